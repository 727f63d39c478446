"""SQL for sms_app_config: lookups, atomic quota reservation and refunds."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from smsgate.apps.schemas import AppSnapshot
from smsgate.db.models import AppConfig

_app = cast(Table, AppConfig.__table__)


async def get_app(conn: AsyncConnection, app_no: str) -> AppSnapshot | None:
    row = (
        await conn.execute(
            select(
                _app.c.app_no,
                _app.c.app_name,
                _app.c.status,
                _app.c.current_limiting,
                _app.c.app_key_hash,
                _app.c.callback_url,
            ).where(_app.c.app_no == app_no)
        )
    ).first()
    if row is None:
        return None
    return AppSnapshot(
        row.app_no,
        row.app_name,
        bool(row.status),
        row.current_limiting,
        row.app_key_hash,
        has_callback=bool(row.callback_url),
    )


async def reserve_quota(conn: AsyncConnection, app_no: str, amount: int) -> bool:
    """Take `amount` billed messages from the app's quota, or nothing.

    One conditional UPDATE: the row lock makes concurrent reservations (from any number of
    processes) serialise, so `use_number` can never pass `available_number`.
    """
    result = await conn.execute(
        update(_app)
        .where(
            _app.c.app_no == app_no,
            _app.c.status.is_(True),
            _app.c.use_number + amount <= _app.c.available_number,
        )
        .values(use_number=_app.c.use_number + amount)
    )
    return result.rowcount == 1


async def lock_app(conn: AsyncConnection, app_no: str) -> None:
    """Hold the app row exclusively for the rest of the transaction (before any statement
    that reads it with a shared lock, such as the webhook flag's EXISTS: taking the shared
    lock first and the exclusive one later deadlocks with a concurrent transaction)."""
    await conn.execute(select(_app.c.id).where(_app.c.app_no == app_no).with_for_update())


async def refund_quota(conn: AsyncConnection, app_no: str, amount: int) -> None:
    if amount <= 0:
        return
    await conn.execute(
        update(_app).where(_app.c.app_no == app_no).values(use_number=_app.c.use_number - amount)
    )


async def find_by_no(session: AsyncSession, app_no: str) -> AppConfig | None:
    return (
        await session.execute(select(AppConfig).where(AppConfig.app_no == app_no))
    ).scalar_one_or_none()


async def find_by_name(session: AsyncSession, app_name: str) -> AppConfig | None:
    return (
        (await session.execute(select(AppConfig).where(AppConfig.app_name == app_name)))
        .scalars()
        .first()
    )
