"""SQL for sms_send_attempt (every provider call per record) and failover's record updates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.db.base import utcnow
from smsgate.db.models import SendAttempt, SendLog

_attempt = cast(Table, SendAttempt.__table__)
_log = cast(Table, SendLog.__table__)


async def insert_attempts(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """One multi-row INSERT for every attempt of a send (the hot path's one extra statement)."""
    if not rows:
        return
    now = utcnow()
    await conn.execute(
        insert(_attempt), [{**row, "created_at": now, "updated_at": now} for row in rows]
    )


async def attempt_counts(
    conn: AsyncConnection, request_id: str, phones: Iterable[str]
) -> dict[str, int]:
    """Attempts already recorded per phone of a request (a queue retry numbers on from them)."""
    rows = await conn.execute(
        select(_attempt.c.phone_number, func.count())
        .where(_attempt.c.request_id == request_id, _attempt.c.phone_number.in_(list(phones)))
        .group_by(_attempt.c.phone_number)
    )
    return {phone: int(count) for phone, count in rows}


async def set_route(
    conn: AsyncConnection,
    request_id: str,
    phones: Sequence[str],
    template_no: str,
    provider_no: str,
    content: str,
) -> None:
    """The records of phones a fallback carried show what was actually sent."""
    if not phones:
        return
    await conn.execute(
        update(_log)
        .where(_log.c.request_id == request_id, _log.c.phone_number.in_(list(phones)))
        .values(template_no=template_no, provider_no=provider_no, content=content)
    )


async def attempts_for_record(
    conn: AsyncConnection, request_id: str, phone: str
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(
            _attempt.c.attempt,
            _attempt.c.provider_no,
            _attempt.c.template_no,
            _attempt.c.started_at,
            _attempt.c.finished_at,
            _attempt.c.status,
            _attempt.c.code,
            _attempt.c.message,
        )
        .where(_attempt.c.request_id == request_id, _attempt.c.phone_number == phone)
        .order_by(_attempt.c.started_at, _attempt.c.id)
    )
    return [dict(row._mapping) for row in rows]
