"""SQL for sms_send_log on the hot path: Core statements, one per step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, case, false, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.db.base import utcnow
from smsgate.db.models import SendLog, SendStatus
from smsgate.webhooks.pending import app_has_callback, is_final

_log = cast(Table, SendLog.__table__)


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What to write on one phone's record once the provider has answered."""

    phone: str
    status: int
    code: str
    message: str
    fee: int
    provider_message_id: str | None
    provider_response: str | None


async def insert_records(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    now = utcnow()
    await conn.execute(
        insert(_log), [{**row, "created_at": now, "updated_at": now} for row in rows]
    )
    # Rows born final (phones refused by the gateway) carry `webhook_pending` already.


async def hold_fee(conn: AsyncConnection, request_id: str, phones: Sequence[str], fee: int) -> None:
    """The quota these SENDING records hold now (a longer fallback reserved more): what a
    refund gives back if their outcome is never written (crash, database lost)."""
    await conn.execute(
        update(_log)
        .where(
            _log.c.request_id == request_id,
            _log.c.phone_number.in_(list(phones)),
            _log.c.status == int(SendStatus.SENDING),
        )
        .values(fee=fee, updated_at=utcnow())
    )


_OUTCOME_COLUMNS = ("status", "code", "message", "fee", "provider_message_id", "provider_response")


def _grouped_case(outcomes: Sequence[RecordOutcome], attr: str) -> Any:
    """The column's new value per phone: a constant when all agree, else one CASE branch per
    distinct value (a provider body shared by a batch of 1,000 phones is sent once)."""
    groups: dict[Any, list[str]] = {}
    for outcome in outcomes:
        groups.setdefault(getattr(outcome, attr), []).append(outcome.phone)
    if len(groups) == 1:
        return next(iter(groups))
    phone = _log.c.phone_number
    return case(*((phone.in_(phones), value) for value, phones in groups.items()))


async def finish_records(
    conn: AsyncConnection, request_id: str, outcomes: Sequence[RecordOutcome]
) -> None:
    """Write every phone's outcome in one UPDATE (CASE on the phone for multi-phone sends)."""
    if not outcomes:
        return
    values: dict[str, Any] = {name: _grouped_case(outcomes, name) for name in _OUTCOME_COLUMNS}
    # Only records still SENDING: phones refused by the gateway (blocklist, per-phone limits)
    # were written FAILED in the same insert and must keep that.
    where = [_log.c.request_id == request_id, _log.c.status == int(SendStatus.SENDING)]
    # Only these phones: a queue worker finishes part of a request while another worker may
    # hold the rest (and a CASE without a branch for a row would write NULL).
    if len(outcomes) == 1:
        where.append(_log.c.phone_number == outcomes[0].phone)
    else:
        where.append(_log.c.phone_number.in_([o.phone for o in outcomes]))
    values["updated_at"] = utcnow()
    pending = _webhook_pending(outcomes)
    if pending is not None:
        values["webhook_pending"] = pending
    await conn.execute(update(_log).where(*where).values(**values))


def _webhook_pending(outcomes: Sequence[RecordOutcome]) -> Any:
    """Flag final records of apps with a callback URL in the same UPDATE (docs/webhooks.md);
    None when no phone becomes final (SUBMITTED and UNKNOWN are settled later)."""
    final = [o.phone for o in outcomes if is_final(o.status)]
    if not final:
        return None
    if len(final) == len(outcomes):
        return app_has_callback()
    return case((_log.c.phone_number.in_(final), app_has_callback()), else_=false())


async def records_for_request(conn: AsyncConnection, request_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(_log).where(_log.c.request_id == request_id).order_by(_log.c.id)
    )
    return [dict(row._mapping) for row in rows]
