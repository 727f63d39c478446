"""SQL for sms_blocklist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.blocklist.schemas import BlockView
from smsgate.db.base import utcnow
from smsgate.db.models import BlockEntry

_b = cast(Table, BlockEntry.__table__)
_COLUMNS = (
    _b.c.id,
    _b.c.phone,
    _b.c.is_prefix,
    _b.c.app_no,
    _b.c.reason,
    _b.c.created_by,
    _b.c.created_at,
)


def _view(row: Any) -> BlockView:
    return BlockView(
        row.id,
        row.phone,
        bool(row.is_prefix),
        row.app_no,
        row.reason,
        row.created_by,
        row.created_at,
    )


async def version(conn: AsyncConnection) -> tuple[int, int]:
    """(row count, highest id): changes with every insert and delete, and costs one index scan."""
    row = (await conn.execute(select(func.count(), func.coalesce(func.max(_b.c.id), 0)))).one()
    return int(row[0]), int(row[1])


async def all_entries(conn: AsyncConnection) -> list[BlockView]:
    return [_view(row) for row in await conn.execute(select(*_COLUMNS))]


async def find_same(
    conn: AsyncConnection, phone: str, is_prefix: bool, app_no: str | None
) -> BlockView | None:
    scope = _b.c.app_no.is_(None) if app_no is None else _b.c.app_no == app_no
    row = (
        await conn.execute(
            select(*_COLUMNS)
            .where(_b.c.phone == phone, _b.c.is_prefix.is_(is_prefix), scope)
            .order_by(_b.c.id)
            .limit(1)
        )
    ).first()
    return _view(row) if row is not None else None


async def insert_entry(
    conn: AsyncConnection,
    phone: str,
    is_prefix: bool,
    app_no: str | None,
    reason: str,
    created_by: str,
) -> BlockView:
    # Whole seconds: what DATETIME keeps on MySQL, so the returned view equals a re-read.
    now = utcnow().replace(microsecond=0)
    result = await conn.execute(
        insert(_b).values(
            phone=phone,
            is_prefix=is_prefix,
            app_no=app_no,
            reason=reason,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
    )
    entry_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    return BlockView(entry_id, phone, is_prefix, app_no, reason, created_by, now)


async def get_entry(conn: AsyncConnection, entry_id: int) -> BlockView | None:
    row = (await conn.execute(select(*_COLUMNS).where(_b.c.id == entry_id))).first()
    return _view(row) if row is not None else None


async def delete_entry(conn: AsyncConnection, entry_id: int) -> bool:
    result = await conn.execute(delete(_b).where(_b.c.id == entry_id))
    return result.rowcount == 1


async def list_entries(
    conn: AsyncConnection,
    *,
    app_no: str | None,
    global_only: bool,
    search: str | None,
    offset: int,
    limit: int,
) -> tuple[int, Sequence[BlockView]]:
    where: list[ColumnElement[bool]] = []
    if global_only:
        where.append(_b.c.app_no.is_(None))
    elif app_no is not None:
        where.append(_b.c.app_no == app_no)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(_b.c.phone.like(f"%{escaped}%", escape="\\"))
    total = (await conn.execute(select(func.count()).select_from(_b).where(*where))).scalar_one()
    rows = await conn.execute(
        select(*_COLUMNS).where(*where).order_by(_b.c.id.desc()).offset(offset).limit(limit)
    )
    return int(total), [_view(row) for row in rows]
