"""Deleting old send records (and their attempts) once they are past any use.

sms_send_log grows by one row per phone per request. With SMSGATE_RECORD_RETENTION_DAYS set,
housekeeping deletes records created before that many days ago; `smsgate records purge`
does the same on demand. Records still in flight (QUEUED, SENDING, UNKNOWN), or whose final
status the app's webhook has not been told yet, are never deleted, whatever their age.
Deletion goes in batches, one short transaction each, so the table stays usable while a
large backlog is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.db.models import SendAttempt, SendLog, SendStatus

_log = cast(Table, SendLog.__table__)
_attempts = cast(Table, SendAttempt.__table__)

IN_FLIGHT = (int(SendStatus.QUEUED), int(SendStatus.SENDING), int(SendStatus.UNKNOWN))
BATCH = 1000  # (request_id, phone) pairs: well within SQLite's bound-parameter limit


def _purgeable(before: datetime) -> ColumnElement[bool]:
    # Not before the app's webhook has learnt the final status (docs/webhooks.md).
    return and_(
        _log.c.created_at < before,
        _log.c.status.not_in(IN_FLIGHT),
        _log.c.webhook_pending.is_(False),
    )


async def count_purgeable(engine: AsyncEngine, before: datetime) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(select(func.count()).where(_purgeable(before)))
        return int(found.scalar_one())


async def purge_records(
    engine: AsyncEngine,
    before: datetime,
    *,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete records created before `before` (naive UTC) that are not in flight, with their
    attempts; `progress(total so far)` after each batch. Returns how many records went."""
    total = 0
    while True:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(_log.c.id, _log.c.request_id, _log.c.phone_number)
                    .where(_purgeable(before))
                    .order_by(_log.c.id)
                    .limit(batch)
                )
            ).all()
            if not rows:
                return total
            pairs = [(row.request_id, row.phone_number) for row in rows]
            await conn.execute(
                delete(_attempts).where(
                    tuple_(_attempts.c.request_id, _attempts.c.phone_number).in_(pairs)
                )
            )
            await conn.execute(delete(_log).where(_log.c.id.in_([row.id for row in rows])))
        total += len(rows)
        if progress is not None:
            progress(total)
        if len(rows) < batch:
            return total
