"""Run Alembic migrations programmatically (used by the CLI, `serve` and the tests)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from smsgate.db.session import normalise_url


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "smsgate.db:migrations")
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", normalise_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking; runs its own event loop, so call it from a thread inside async code."""
    command.upgrade(alembic_config(database_url), revision)
