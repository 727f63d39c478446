"""SQL for looking at send records: search, streaming export, statistics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Select, Table, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.db.models import SendLog, SendStatus

_log = cast(Table, SendLog.__table__)

LIST_COLUMNS = [
    c for c in _log.c if c.name not in {"provider_response", "params", "remark", "ext_json"}
]


@dataclass(frozen=True, slots=True)
class RecordFilter:
    phone: str | None = None
    app_no: str | None = None
    business_no: str | None = None
    provider_no: str | None = None
    status: int | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        for column, value in (
            (_log.c.phone_number, self.phone),
            (_log.c.app_no, self.app_no),
            (_log.c.business_no, self.business_no),
            (_log.c.provider_no, self.provider_no),
            (_log.c.status, self.status),
            (_log.c.request_id, self.request_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if self.since is not None:
            query = query.where(_log.c.created_at >= self.since)
        if self.until is not None:
            query = query.where(_log.c.created_at < self.until)
        return query


async def search(
    conn: AsyncConnection, where: RecordFilter, page: int, page_size: int
) -> tuple[int, list[dict[str, Any]]]:
    total = (await conn.execute(where.apply(select(func.count()).select_from(_log)))).scalar_one()
    rows = await conn.execute(
        where.apply(select(*LIST_COLUMNS))
        .order_by(_log.c.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return int(total), [dict(row._mapping) for row in rows]


async def get(conn: AsyncConnection, record_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(_log).where(_log.c.id == record_id))).first()
    return dict(row._mapping) if row is not None else None


async def stream(conn: AsyncConnection, where: RecordFilter) -> AsyncIterator[dict[str, Any]]:
    """Rows one by one through a server-side cursor: memory stays flat for any count."""
    result = await conn.stream(where.apply(select(*LIST_COLUMNS)).order_by(_log.c.id))
    async for row in result:
        yield dict(row._mapping)


_SENT = (
    SendStatus.SUBMITTED,
    SendStatus.DELIVERED,
    SendStatus.UNDELIVERED,
    SendStatus.UNKNOWN,
)
_FAILED = (SendStatus.FAILED, SendStatus.UNDELIVERED)


def _count_in(statuses: tuple[SendStatus, ...]) -> Any:
    return func.sum(case((_log.c.status.in_([int(s) for s in statuses]), 1), else_=0))


async def stats(
    conn: AsyncConnection, group_by: str, since: date, until: date, app_no: str | None = None
) -> list[dict[str, Any]]:
    """sent (handed to a provider), delivered, failed and fee per day, channel or app."""
    key = {
        "day": func.date(_log.c.created_at),
        "channel": _log.c.provider_no,
        "app": _log.c.app_no,
    }[group_by].label("key")
    query = (
        select(
            key,
            func.count().label("total"),
            _count_in(_SENT).label("sent"),
            _count_in((SendStatus.DELIVERED,)).label("delivered"),
            _count_in(_FAILED).label("failed"),
            func.coalesce(
                func.sum(case((_log.c.status != int(SendStatus.FAILED), _log.c.fee), else_=0)), 0
            ).label("fee"),
        )
        .where(
            _log.c.created_at >= datetime.combine(since, datetime.min.time()),
            _log.c.created_at < datetime.combine(until, datetime.min.time()),
        )
        .group_by(key)
        .order_by(key)
    )
    if app_no:
        query = query.where(_log.c.app_no == app_no)
    rows = await conn.execute(query)
    return [
        {
            "key": str(row.key),
            "total": int(row.total),
            "sent": int(row.sent or 0),
            "delivered": int(row.delivered or 0),
            "failed": int(row.failed or 0),
            "fee": int(row.fee or 0),
        }
        for row in rows
    ]


async def status_counts(
    conn: AsyncConnection, group_by: str, since: date, until: date
) -> list[dict[str, Any]]:
    """Messages per (day, channel or app) and status, for the console's charts."""
    key = {
        "day": func.date(_log.c.created_at),
        "channel": _log.c.provider_no,
        "app": _log.c.app_no,
    }[group_by].label("key")
    query = (
        select(key, _log.c.status, func.count().label("n"))
        .where(
            _log.c.created_at >= datetime.combine(since, datetime.min.time()),
            _log.c.created_at < datetime.combine(until, datetime.min.time()),
        )
        .group_by(key, _log.c.status)
        .order_by(key)
    )
    rows = await conn.execute(query)
    return [
        {"key": str(row.key), "status": SendStatus(row.status).name, "count": int(row.n)}
        for row in rows
    ]
