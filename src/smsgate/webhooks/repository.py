"""SQL for app webhooks: claiming flagged send records into the outbox, due deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.db.base import utcnow
from smsgate.db.models import AppConfig, AuditLog, SendLog, WebhookDelivery

_log = cast(Table, SendLog.__table__)
_app = cast(Table, AppConfig.__table__)
_delivery = cast(Table, WebhookDelivery.__table__)
_audit = cast(Table, AuditLog.__table__)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"

_EVENT_COLUMNS = (
    _log.c.id,
    _log.c.request_id,
    _log.c.app_no,
    _log.c.business_no,
    _log.c.phone_number,
    _log.c.status,
    _log.c.code,
    _log.c.message,
    _log.c.report_code,
    _log.c.report_message,
    _log.c.delivered_at,
    _log.c.fee,
    _log.c.updated_at,
)


def _locking(conn: AsyncConnection, query: Any) -> Any:
    # MariaDB/MySQL: concurrent dispatchers take disjoint batches. SQLite has one process.
    if conn.dialect.name == "sqlite":
        return query
    return query.with_for_update(skip_locked=True)


async def flagged_records(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    """Final records waiting to be put in the outbox, locked until the transaction ends."""
    query = (
        select(*_EVENT_COLUMNS)
        .where(_log.c.webhook_pending.is_(True))
        .order_by(_log.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in await conn.execute(_locking(conn, query))]


async def enqueue(conn: AsyncConnection, events: Sequence[tuple[dict[str, Any], bytes]]) -> int:
    """Write one outbox row per record (skipping records that already have one) and clear
    their flags, in the caller's transaction."""
    if not events:
        return 0
    ids = [record["id"] for record, _ in events]
    known = set(
        (
            await conn.execute(select(_delivery.c.record_id).where(_delivery.c.record_id.in_(ids)))
        ).scalars()
    )
    now = utcnow()
    rows = [
        {
            "app_no": record["app_no"],
            "record_id": record["id"],
            "body": body.decode("utf-8"),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for record, body in events
        if record["id"] not in known
    ]
    if rows:
        await conn.execute(insert(_delivery), rows)
    # updated_at is the record's own history (when it became final): keep it.
    await conn.execute(
        update(_log)
        .where(_log.c.id.in_(ids))
        .values(webhook_pending=False, updated_at=_log.c.updated_at)
    )
    return len(rows)


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: int
    app_no: str
    record_id: int
    body: bytes
    attempts: int
    first_attempt_at: datetime | None


async def lease_due(conn: AsyncConnection, limit: int, lease: timedelta) -> list[DueDelivery]:
    """Due deliveries, pushed `lease` into the future so no other dispatcher takes them
    while this one is POSTing; a dispatcher that dies mid-POST leaves them due again."""
    now = utcnow()
    query = (
        select(
            _delivery.c.id,
            _delivery.c.app_no,
            _delivery.c.record_id,
            _delivery.c.body,
            _delivery.c.attempts,
            _delivery.c.first_attempt_at,
        )
        .where(_delivery.c.status == PENDING, _delivery.c.next_attempt_at <= now)
        .order_by(_delivery.c.next_attempt_at)
        .limit(limit)
    )
    due = [
        DueDelivery(
            row.id,
            row.app_no,
            row.record_id,
            row.body.encode("utf-8"),
            row.attempts,
            row.first_attempt_at,
        )
        for row in await conn.execute(_locking(conn, query))
    ]
    if due:
        await conn.execute(
            update(_delivery)
            .where(_delivery.c.id.in_([d.id for d in due]))
            .values(next_attempt_at=now + lease, updated_at=now)
        )
    return due


async def app_targets(
    conn: AsyncConnection, app_nos: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    """app_no -> (callback URL, sealed signing secret), read at delivery time so a changed
    URL or rotated secret applies to retries too."""
    rows = await conn.execute(
        select(_app.c.app_no, _app.c.callback_url, _app.c.webhook_secret).where(
            _app.c.app_no.in_(list(set(app_nos)))
        )
    )
    return {row.app_no: (row.callback_url, row.webhook_secret) for row in rows}


async def mark_delivered(conn: AsyncConnection, delivery: DueDelivery, at: datetime) -> None:
    await conn.execute(
        update(_delivery)
        .where(_delivery.c.id == delivery.id)
        .values(
            status=DELIVERED,
            attempts=delivery.attempts + 1,
            first_attempt_at=delivery.first_attempt_at or at,
            last_attempt_at=at,
            delivered_at=at,
            updated_at=at,
        )
    )


async def mark_failed(
    conn: AsyncConnection,
    delivery: DueDelivery,
    at: datetime,
    error: str,
    retry_at: datetime | None,
) -> None:
    """Schedule the next attempt, or (retry_at None) dead-letter the delivery."""
    values: dict[str, Any] = {
        "attempts": delivery.attempts + 1,
        "first_attempt_at": delivery.first_attempt_at or at,
        "last_attempt_at": at,
        "last_error": error[:512],
        "updated_at": at,
    }
    if retry_at is None:
        values["status"] = DEAD
    else:
        values["next_attempt_at"] = retry_at
    await conn.execute(update(_delivery).where(_delivery.c.id == delivery.id).values(**values))


async def dead_letters(
    conn: AsyncConnection, app_no: str | None, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    where = [_delivery.c.status == DEAD]
    if app_no:
        where.append(_delivery.c.app_no == app_no)
    total = (
        await conn.execute(select(func.count()).select_from(_delivery).where(*where))
    ).scalar_one()
    rows = await conn.execute(
        select(_delivery).where(*where).order_by(_delivery.c.id.desc()).offset(offset).limit(limit)
    )
    return [dict(row._mapping) for row in rows], int(total)


async def delivery(conn: AsyncConnection, delivery_id: int) -> dict[str, Any] | None:
    row = (await conn.execute(select(_delivery).where(_delivery.c.id == delivery_id))).first()
    return dict(row._mapping) if row is not None else None


async def requeue_dead(conn: AsyncConnection, delivery_id: int) -> bool:
    """A dead letter becomes due now with a fresh retry window; False if it is not dead."""
    now = utcnow()
    result = await conn.execute(
        update(_delivery)
        .where(_delivery.c.id == delivery_id, _delivery.c.status == DEAD)
        .values(
            status=PENDING,
            attempts=0,
            first_attempt_at=None,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    return result.rowcount == 1


async def audit(
    conn: AsyncConnection, username: str, action: str, key: str, changes: str | None
) -> None:
    now = utcnow()
    await conn.execute(
        insert(_audit).values(
            username=username,
            action=action,
            resource="webhooks",
            resource_key=key[:128],
            changes=changes,
            created_at=now,
            updated_at=now,
        )
    )
