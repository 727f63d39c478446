"""SQL for delivery reports: matching send records, applying reports, the pending queue."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.db.base import utcnow
from smsgate.db.models import PendingReport, SendLog, SendStatus
from smsgate.reports.parsers import DeliveryReport
from smsgate.webhooks.pending import app_has_callback

_log = cast(Table, SendLog.__table__)
_pending = cast(Table, PendingReport.__table__)

# A report may settle a record the provider accepted or whose outcome was ambiguous.
SETTLEABLE = (int(SendStatus.SUBMITTED), int(SendStatus.UNKNOWN))
_DIGITS = re.compile(r"\D")


def _phone_matches(record_phone: str, reported: str) -> bool:
    """Providers write phones their own way (national, E.164, masked `1381111****`)."""
    have = _DIGITS.sub("", record_phone)
    visible = reported.split("*", 1)[0]
    digits = _DIGITS.sub("", visible)
    if not digits:
        return False
    if "*" in reported:  # masked: the visible prefix must appear in the number
        return digits in have
    return have.endswith(digits) or digits.endswith(have)


async def find_record(
    conn: AsyncConnection, provider_no: str, report: DeliveryReport
) -> dict[str, Any] | None:
    """The send record a report is about: by the provider's id or our echoed request id,
    then by phone among that request's records."""
    keys = []
    if report.provider_message_id:
        keys.append(_log.c.provider_message_id == report.provider_message_id)
    if report.correlation_id:
        keys.append(_log.c.request_id == report.correlation_id[:36])
    if not keys:
        return None
    rows = [
        dict(row._mapping)
        for row in await conn.execute(
            select(_log.c.id, _log.c.phone_number, _log.c.status)
            .where(_log.c.provider_no == provider_no, or_(*keys))
            .limit(1000)
        )
    ]
    if len(rows) == 1 and (
        not report.phone or _phone_matches(rows[0]["phone_number"], report.phone)
    ):
        return rows[0]
    matching = [
        row for row in rows if report.phone and _phone_matches(row["phone_number"], report.phone)
    ]
    return matching[0] if len(matching) == 1 else None


async def apply_report(conn: AsyncConnection, record_id: int, report: DeliveryReport) -> bool:
    """Settle one record; a no-op for duplicates (the record is already final)."""
    status = SendStatus.DELIVERED if report.delivered else SendStatus.UNDELIVERED
    now = utcnow()
    result = await conn.execute(
        update(_log)
        .where(_log.c.id == record_id, _log.c.status.in_(SETTLEABLE))
        .values(
            status=int(status),
            report_code=report.code[:64],
            report_message=report.message[:512],
            reported_at=now,
            delivered_at=(report.reported_at or now) if report.delivered else None,
            updated_at=now,
            # Both outcomes are final: the app's webhook, if it has one (docs/webhooks.md).
            webhook_pending=app_has_callback(),
        )
    )
    return result.rowcount == 1


async def keep_pending(conn: AsyncConnection, provider_no: str, report: DeliveryReport) -> None:
    await conn.execute(
        insert(_pending).values(
            provider_no=provider_no,
            provider_message_id=report.provider_message_id,
            correlation_id=(report.correlation_id or "")[:64] or None,
            phone=report.phone[:32],
            delivered=report.delivered,
            code=report.code[:64],
            message=report.message[:512],
            reported_at=report.reported_at,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
    )


async def pending_batch(
    conn: AsyncConnection, limit: int, after_id: int = 0
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(_pending).where(_pending.c.id > after_id).order_by(_pending.c.id).limit(limit)
    )
    return [dict(row._mapping) for row in rows]


async def drop_pending(conn: AsyncConnection, ids: Sequence[int]) -> None:
    if ids:
        await conn.execute(delete(_pending).where(_pending.c.id.in_(list(ids))))


async def drop_pending_older_than(conn: AsyncConnection, cutoff: datetime) -> int:
    result = await conn.execute(delete(_pending).where(_pending.c.created_at < cutoff))
    return int(result.rowcount)


def pending_as_report(row: dict[str, Any]) -> DeliveryReport:
    return DeliveryReport(
        provider_message_id=row["provider_message_id"],
        phone=row["phone"],
        delivered=bool(row["delivered"]),
        code=row["code"],
        message=row["message"],
        reported_at=row["reported_at"],
        correlation_id=row["correlation_id"],
    )
