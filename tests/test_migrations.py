"""Alembic: `upgrade head` on SQLite and MariaDB, one head, and no drift from the models."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from conftest import (
    MARIADB_HOST,
    MARIADB_PORT,
    create_mariadb_database,
    drop_mariadb_database,
    mariadb_url,
    require_service,
)
from smsgate.config import Settings
from smsgate.db.base import Base
from smsgate.db.migrate import alembic_config, upgrade
from smsgate.db.session import create_engine

SEED_TABLES = {
    "sms_service_provider_config": {
        "channel_no", "provider_name", "provider_no", "access_key_id", "access_key_secret",
        "endpoint", "sdk_app_id", "region", "remark", "ext_json", "status",
    },
    "sms_sign_config": {
        "sign_name", "provider_no", "provider_name", "remark", "ext_json", "status",
    },
    "sms_template_config": {
        "sign_name", "provider_no", "template_no", "template_content",
        "third_party_template_no", "remark", "ext_json", "status",
    },
    "sms_app_config": {
        "app_no", "app_name", "available_number", "current_limiting", "use_number", "remark",
        "ext_json", "status", "app_key_hash",
    },
    "sms_business_config": {
        "app_no", "business_name", "business_no", "template_no", "business_desc", "remark",
        "ext_json", "status",
    },
    "sms_send_log": {
        "app_no", "business_no", "status", "fee", "phone_number", "message", "code", "content",
        "remark", "ext_json", "request_id", "provider_no", "template_no", "provider_message_id",
        "params", "report_code", "report_message", "delivered_at",
    },
}  # fmt: skip


def _drift_and_columns(url: str) -> tuple[list[Any], dict[str, set[str]]]:
    async def run() -> tuple[list[Any], dict[str, set[str]]]:
        engine = create_engine(Settings(database_url=url))
        try:
            async with engine.connect() as conn:

                def inspect_sync(sync_conn: Any) -> tuple[list[Any], dict[str, set[str]]]:
                    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                    diff = compare_metadata(context, Base.metadata)
                    inspector = inspect(sync_conn)
                    columns = {
                        table: {c["name"] for c in inspector.get_columns(table)}
                        for table in inspector.get_table_names()
                    }
                    return diff, columns

                return await conn.run_sync(inspect_sync)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _check(url: str) -> None:
    upgrade(url)
    upgrade(url)  # idempotent
    diff, columns = _drift_and_columns(url)
    assert diff == [], f"models and migrations differ: {diff}"
    for table, expected in SEED_TABLES.items():
        assert expected <= columns[table], f"{table} lacks {expected - columns[table]}"
        assert {"id", "created_at", "updated_at"} <= columns[table]


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_head_on_sqlite(tmp_path: Any) -> None:
    _check(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")


@pytest.mark.services
def test_upgrade_head_on_mariadb() -> None:
    require_service("MariaDB", MARIADB_HOST, MARIADB_PORT)
    name = create_mariadb_database()
    try:
        _check(mariadb_url(name))
    finally:
        drop_mariadb_database(name)
