"""SQL of the send queue: claiming due records fairly, leases, retries, cancellation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsgate.db.base import utcnow
from smsgate.db.models import SendLog, SendStatus
from smsgate.webhooks.pending import app_has_callback, is_final

_log = cast(Table, SendLog.__table__)

QUEUED = int(SendStatus.QUEUED)
SENDING = int(SendStatus.SENDING)
WORKER_LOST = "WORKER_LOST"


@dataclass(frozen=True, slots=True)
class ClaimedRecord:
    id: int
    request_id: str
    app_no: str
    business_no: str
    phone: str
    content: str
    params: str | None
    fee: int
    attempts: int  # including this one
    # The template it was last sent with: a fallback's when it failed over before and came
    # back to the queue (reconciliation found the fallback never took it).
    template_no: str
    claimed_by: str  # the claim's token: what this worker may still write is what has it


def _due(now: datetime) -> Any:
    return and_(
        _log.c.status == QUEUED,
        (_log.c.next_attempt_at <= now) | _log.c.next_attempt_at.is_(None),
    )


async def claim_due(
    conn: AsyncConnection, token: str, limit: int, skip_locked: bool
) -> list[ClaimedRecord]:
    """Claim up to `limit` due QUEUED records, shared fairly among the apps that have some.

    Each app gets an equal share of the round, so one app's 10,000-phone request cannot
    hold back another app's single message. On MySQL/MariaDB the rows are picked with
    `FOR UPDATE SKIP LOCKED`, so concurrent workers take different rows without waiting.
    The UPDATE also requires `status = QUEUED` and stamps our token, and we read back by
    token: even without SKIP LOCKED (SQLite) no record is ever claimed twice.
    """
    now = utcnow()
    apps = [
        row[0]
        for row in await conn.execute(
            select(_log.c.app_no).where(_due(now)).group_by(_log.c.app_no).limit(limit)
        )
    ]
    if not apps:
        return []
    share = max(1, limit // len(apps))
    ids: list[int] = []
    for app_no in apps:
        query = (
            select(_log.c.id)
            .where(_due(now), _log.c.app_no == app_no)
            .order_by(_log.c.next_attempt_at, _log.c.id)
            .limit(share)
        )
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        ids.extend(row[0] for row in await conn.execute(query))
    if not ids:
        return []
    await conn.execute(
        update(_log)
        .where(_log.c.id.in_(ids), _log.c.status == QUEUED)
        .values(
            status=SENDING,
            claimed_by=token,
            claimed_at=now,
            dispatched_at=None,
            attempts=_log.c.attempts + 1,
            updated_at=now,
        )
    )
    rows = await conn.execute(
        select(
            _log.c.id,
            _log.c.request_id,
            _log.c.app_no,
            _log.c.business_no,
            _log.c.phone_number,
            _log.c.content,
            _log.c.params,
            _log.c.fee,
            _log.c.attempts,
            _log.c.template_no,
            _log.c.claimed_by,
        )
        .where(_log.c.claimed_by == token, _log.c.status == SENDING)
        .order_by(_log.c.id)
    )
    return [ClaimedRecord(*tuple(row)) for row in rows]


async def _held(conn: AsyncConnection, ids: Sequence[int], token: str) -> list[int]:
    """Which of `ids` the claim `token` still holds (SENDING, its token), locked.

    Read by primary key only and decided here: a WHERE on the status would let MariaDB
    walk the status index instead, and the next-key locks it takes there (up to the end of
    the index) deadlock with other workers moving their records to a new status."""
    rows = await conn.execute(
        select(_log.c.id, _log.c.claimed_by, _log.c.status)
        .where(_log.c.id.in_(list(ids)))
        .with_for_update()
    )
    return [row.id for row in rows if row.claimed_by == token and row.status == SENDING]


async def mark_dispatched(conn: AsyncConnection, ids: Sequence[int], token: str) -> list[int]:
    """Just before the provider call: from now on a lost worker means UNKNOWN, not retry.

    Only for records the claim `token` still holds: one that waited past the lease may have
    been given back to the queue by the reaper and claimed by another worker, and must not
    be sent by this one too. Returns the ids that may be sent. The lease starts again here,
    so the reaper measures the provider call, not the wait before it."""
    held = await _held(conn, ids, token)
    if held:
        now = utcnow()
        await conn.execute(
            update(_log)
            .where(_log.c.id.in_(held))
            .values(dispatched_at=now, claimed_at=now, updated_at=now)
        )
    return held


async def hold_claimed(conn: AsyncConnection, ids: Sequence[int], token: str) -> set[int]:
    """Which of `ids` the claim `token` still holds, locked for the rest of the transaction:
    the outcome (and any quota given back) is written for those only.

    A record the reaper marked UNKNOWN (WORKER_LOST) while this worker's provider call was
    still running is taken back first: its answer is known now. Anything else that moved
    it on (reconciliation, a report) cleared the token, so it stays as it is. (Primary-key
    access only, as in `_held`.)"""
    rows = await conn.execute(
        select(_log.c.id, _log.c.claimed_by, _log.c.status, _log.c.code)
        .where(_log.c.id.in_(list(ids)))
        .with_for_update()
    )
    held: set[int] = set()
    lost: list[int] = []
    for row in rows:
        if row.claimed_by != token:
            continue
        if row.status == SENDING:
            held.add(row.id)
        elif row.status == int(SendStatus.UNKNOWN) and row.code == WORKER_LOST:
            lost.append(row.id)
    if lost:
        await conn.execute(
            update(_log).where(_log.c.id.in_(lost)).values(status=SENDING, updated_at=utcnow())
        )
    return held | set(lost)


async def requeue(
    conn: AsyncConnection,
    ids: Sequence[int],
    token: str,
    at: datetime,
    code: str,
    message: str,
    undo_attempt: bool = False,
) -> None:
    """Back to QUEUED, due at `at` (a retry, or a claim released before dispatch); only
    what the claim `token` still holds."""
    values: dict[str, Any] = {
        "status": QUEUED,
        "next_attempt_at": at,
        "claimed_by": None,
        "claimed_at": None,
        "dispatched_at": None,
        "code": code[:64],
        "message": message[:512],
        "updated_at": utcnow(),
    }
    if undo_attempt:
        values["attempts"] = _log.c.attempts - 1
    held = await _held(conn, ids, token)
    if held:
        await conn.execute(update(_log).where(_log.c.id.in_(held)).values(**values))


async def fail(
    conn: AsyncConnection, ids: Sequence[int], token: str, code: str, message: str
) -> None:
    """FAILED without a provider call (the business was disabled meanwhile, ...); only what
    the claim `token` still holds."""
    held = await _held(conn, ids, token)
    if not held:
        return
    await conn.execute(
        update(_log)
        .where(_log.c.id.in_(held))
        .values(
            status=int(SendStatus.FAILED),
            fee=0,  # its quota is given back: nothing was billed
            code=code[:64],
            message=message[:512],
            updated_at=utcnow(),
            webhook_pending=app_has_callback(),
        )
    )


async def reap_lost_claims(conn: AsyncConnection, lease: timedelta) -> tuple[int, int]:
    """Records whose worker vanished (crash, SIGKILL) past the lease.

    Not yet dispatched: nothing reached the provider, so they go back to the queue.
    Dispatched: the provider may have sent them, so they become UNKNOWN (never resent
    blindly; a delivery report or reconciliation settles them). Send API records left
    SENDING for SEND_LOST_AFTER become UNKNOWN too. Returns (requeued, unknown).
    """
    cutoff = utcnow() - lease
    stale = and_(
        _log.c.status == SENDING,
        _log.c.claimed_by.is_not(None),
        _log.c.claimed_at < cutoff,
    )
    # Find them with a plain read first and update by primary key: a range UPDATE over
    # SENDING rows would take gap locks that deadlock with other workers' claims.
    ids = [row[0] for row in await conn.execute(select(_log.c.id).where(stale).limit(5000))]
    if not ids:
        return 0, await _reap_lost_sends(conn)
    stale = and_(stale, _log.c.id.in_(ids))
    requeued = await conn.execute(
        update(_log)
        .where(stale, _log.c.dispatched_at.is_(None))
        .values(
            status=QUEUED,
            claimed_by=None,
            claimed_at=None,
            next_attempt_at=utcnow(),
            updated_at=utcnow(),
        )
    )
    unknown = await conn.execute(
        update(_log)
        .where(stale, _log.c.dispatched_at.is_not(None))
        .values(
            status=int(SendStatus.UNKNOWN),
            code=WORKER_LOST,
            message="the worker sending this message stopped after the provider call began",
            updated_at=utcnow(),
        )
    )
    return int(requeued.rowcount), int(unknown.rowcount) + await _reap_lost_sends(conn)


# A send API request's records are SENDING only while its provider calls run, each bounded by
# its channel's timeouts; older than this, the process sending them is gone (or could not
# write the provider's answer).
SEND_LOST_AFTER = timedelta(minutes=10)
SEND_LOST = "SEND_LOST"


async def _reap_lost_sends(conn: AsyncConnection) -> int:
    """Send API records left SENDING (no claim): UNKNOWN, as the provider may have them."""
    cutoff = utcnow() - SEND_LOST_AFTER
    candidates = [
        row[0]
        for row in await conn.execute(
            select(_log.c.id)
            .where(
                _log.c.status == SENDING,
                _log.c.claimed_by.is_(None),
                _log.c.updated_at < cutoff,
            )
            .limit(5000)
        )
    ]
    if not candidates:
        return 0
    # Decided again on the locked rows, found by primary key only (see `_held`).
    rows = await conn.execute(
        select(_log.c.id, _log.c.status, _log.c.claimed_by, _log.c.updated_at)
        .where(_log.c.id.in_(candidates))
        .with_for_update()
    )
    lost = [
        row.id
        for row in rows
        if row.status == SENDING and row.claimed_by is None and row.updated_at < cutoff
    ]
    if lost:
        await conn.execute(
            update(_log)
            .where(_log.c.id.in_(lost))
            .values(
                status=int(SendStatus.UNKNOWN),
                code=SEND_LOST,
                message="the gateway process sending this message stopped, or could not "
                "record the provider's answer; it may have been sent",
                updated_at=utcnow(),
            )
        )
    return len(lost)


async def request_records(
    conn: AsyncConnection, app_no: str, request_id: str
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(
            _log.c.id,
            _log.c.phone_number,
            _log.c.status,
            _log.c.fee,
            _log.c.code,
            _log.c.message,
            _log.c.provider_message_id,
            _log.c.next_attempt_at,
            _log.c.attempts,
            _log.c.report_code,
            _log.c.delivered_at,
        )
        .where(_log.c.request_id == request_id, _log.c.app_no == app_no)
        .order_by(_log.c.id)
    )
    return [dict(row._mapping) for row in rows]


async def cancel_queued(
    conn: AsyncConnection, app_no: str, request_id: str, token: str
) -> tuple[int, int]:
    """CANCELLED for what no worker has claimed yet; returns (records, fee to give back).

    The UPDATE stamps `token`, and only the rows it changed are summed: a record a worker
    claims at the same moment is neither cancelled nor refunded.
    """
    await conn.execute(
        update(_log)
        .where(_log.c.request_id == request_id, _log.c.app_no == app_no, _log.c.status == QUEUED)
        .values(
            status=int(SendStatus.CANCELLED),
            code="CANCELLED",
            message="cancelled before it was sent",
            claimed_by=token,
            updated_at=utcnow(),
            webhook_pending=app_has_callback(),
        )
    )
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(_log.c.fee), 0)).where(
                _log.c.claimed_by == token, _log.c.status == int(SendStatus.CANCELLED)
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def queue_depth(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """QUEUED records that are due now, and the oldest due time (for lag)."""
    now = utcnow()
    row = (
        await conn.execute(select(func.count(), func.min(_log.c.next_attempt_at)).where(_due(now)))
    ).one()
    return int(row[0]), row[1]


@dataclass(frozen=True, slots=True)
class UnknownRecord:
    id: int
    request_id: str
    app_no: str
    business_no: str
    provider_no: str
    phone: str
    fee: int
    since: datetime  # when it became UNKNOWN (its last update)


async def unknown_records(
    conn: AsyncConnection, older_than: datetime, limit: int
) -> list[UnknownRecord]:
    """UNKNOWN records untouched since `older_than`, oldest first (reconciliation)."""
    rows = await conn.execute(
        select(
            _log.c.id,
            _log.c.request_id,
            _log.c.app_no,
            _log.c.business_no,
            _log.c.provider_no,
            _log.c.phone_number,
            _log.c.fee,
            _log.c.updated_at,
        )
        .where(_log.c.status == int(SendStatus.UNKNOWN), _log.c.updated_at < older_than)
        .order_by(_log.c.updated_at, _log.c.id)
        .limit(limit)
    )
    return [UnknownRecord(*row) for row in rows]


async def settle_unknown(
    conn: AsyncConnection,
    record_id: int,
    status: SendStatus,
    code: str,
    message: str,
    provider_message_id: str | None = None,
    *,
    not_billed: bool = False,
) -> bool:
    """Settle one UNKNOWN record; False when something else (a delivery report) did first.
    `not_billed`: its quota is given back, so its fee becomes 0."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": int(status),
        "code": code[:64],
        "message": message[:512],
        "updated_at": now,
        "claimed_by": None,
        "claimed_at": None,
    }
    if provider_message_id:
        values["provider_message_id"] = provider_message_id[:128]
    if not_billed:
        values["fee"] = 0
    if status is SendStatus.DELIVERED:
        values["delivered_at"] = now
    if status in (SendStatus.DELIVERED, SendStatus.UNDELIVERED):
        values["report_code"] = code[:64]
        values["reported_at"] = now
    if status is SendStatus.QUEUED:
        values["next_attempt_at"] = now
        values["dispatched_at"] = None
    if is_final(status):
        # The app's webhook learns the final status like any other (docs/webhooks.md).
        values["webhook_pending"] = app_has_callback()
    result = await conn.execute(
        update(_log)
        .where(_log.c.id == record_id, _log.c.status == int(SendStatus.UNKNOWN))
        .values(**values)
    )
    return bool(result.rowcount)
