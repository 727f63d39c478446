"""Async engine construction for SQLite (embedded default) and MySQL/MariaDB."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from smsgate.config import Settings


def normalise_url(url: str) -> str:
    """Accept `mysql://`/`mariadb://` URLs and make sure MySQL talks utf8mb4."""
    parsed = make_url(url)
    if parsed.drivername in {"mysql", "mariadb", "mysql+pymysql", "mariadb+asyncmy"}:
        parsed = parsed.set(drivername="mysql+asyncmy")
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername.startswith("mysql") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def create_engine(settings: Settings) -> AsyncEngine:
    url = normalise_url(settings.database_url)
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # A writer waits for the lock instead of failing at once ("database is locked").
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_pre_ping=True,
            pool_recycle=1800,
        )
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; busy_timeout waits for the writer lock.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


T = TypeVar("T")

# MySQL/MariaDB: 1213 deadlock victim, 1205 lock wait timeout; the transaction was rolled back.
_LOCK_CONFLICTS = {1213, 1205}


def _is_lock_conflict(exc: OperationalError) -> bool:
    args: tuple[Any, ...] = tuple(getattr(exc.orig, "args", ()))
    return bool(args) and args[0] in _LOCK_CONFLICTS


async def in_transaction(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], attempts: int = 4
) -> T:
    """Run `work` in a transaction, again (from the start) when the database rolled it back
    to resolve a lock conflict."""
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except OperationalError as exc:
            if attempt == attempts or not _is_lock_conflict(exc):
                raise
            await asyncio.sleep(0.02 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover
