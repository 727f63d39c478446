"""Reconciling UNKNOWN records: ask the provider where it can say, else wait for the report.

An ambiguous outcome (timeout after the request was written, connection reset, a lost
worker) leaves a record UNKNOWN: the message may have been sent, so it is never resent
blindly. Aliyun can be asked (QuerySendDetails, by phone, send date and our OutId, the
request id): found delivered or waiting -> DELIVERED / SUBMITTED, found failed ->
UNDELIVERED, still not found after the query window -> it was never accepted and goes back
to the queue; a verification code does not (it has expired by then, and its record keeps
only the masked code): it becomes FAILED and its quota is given back. Other providers have
no such query: a delivery report settles the record, and without one within the report
window it becomes FAILED with code UNCONFIRMED (not resent; its fee is kept, since it may
have been delivered and billed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.apps import repository as apps_repo
from smsgate.config import Settings
from smsgate.db.base import utcnow
from smsgate.db.models import SendStatus
from smsgate.pipeline import repository as queue
from smsgate.pipeline.repository import UnknownRecord
from smsgate.providers.aliyun import AliyunAdapter
from smsgate.providers.base import ProviderError
from smsgate.sending.service import ResolvedRoute, SendingService

log = logging.getLogger("smsgate.reconcile")

UNCONFIRMED = "UNCONFIRMED"
NOT_ACCEPTED = "RECONCILED_NOT_SENT"
BATCH = 200
# Aliyun's SendDate is a Beijing calendar day (QuerySendDetails doc).
_BEIJING = timezone(timedelta(hours=8))
# QuerySendDetails SendStatus: 1 waiting for a receipt, 2 failed, 3 delivered.
_ALIYUN_STATUS = {1: SendStatus.SUBMITTED, 2: SendStatus.UNDELIVERED, 3: SendStatus.DELIVERED}


@dataclass
class ReconcileCounts:
    settled: int = 0
    requeued: int = 0
    not_sent: int = 0  # verification codes Aliyun never accepted: FAILED, not resent
    unconfirmed: int = 0


class Reconciler:
    def __init__(self, settings: Settings, engine: AsyncEngine, sending: SendingService) -> None:
        self._settings = settings
        self._engine = engine
        self._sending = sending

    async def run_once(self) -> ReconcileCounts:
        counts = ReconcileCounts()
        settings = self._settings
        now = utcnow()
        async with self._engine.connect() as conn:
            records = await queue.unknown_records(
                conn, now - timedelta(seconds=settings.reconcile_query_after_seconds), BATCH
            )
        for record in records:
            age = (now - record.since).total_seconds()
            resolved = await self._sending.route_for(record.business_no)
            adapter = _aliyun_adapter(resolved, record)
            if adapter is not None:
                code = resolved is not None and resolved.route.is_verification
                await self._ask_aliyun(adapter, record, age, counts, code)
            elif age >= settings.reconcile_report_window_seconds:
                async with self._engine.begin() as conn:
                    if await queue.settle_unknown(
                        conn,
                        record.id,
                        SendStatus.FAILED,
                        UNCONFIRMED,
                        "no delivery report within the report window; not resent, as it "
                        "may have been delivered",
                    ):
                        counts.unconfirmed += 1
        return counts

    async def _ask_aliyun(
        self,
        adapter: AliyunAdapter,
        record: UnknownRecord,
        age: float,
        counts: ReconcileCounts,
        verification_code: bool,
    ) -> None:
        sent_day = record.since.replace(tzinfo=UTC).astimezone(_BEIJING).date()
        try:
            details = await adapter.query_send_details(record.phone, sent_day)
            if not any(d.out_id == record.request_id for d in details):
                # A send late in the Beijing day may be listed under the next day.
                details = await adapter.query_send_details(
                    record.phone, sent_day + timedelta(days=1)
                )
        except ProviderError as exc:
            log.warning("QuerySendDetails for record %d failed: %s", record.id, exc)
            return
        found = [d for d in details if d.out_id == record.request_id]
        async with self._engine.begin() as conn:
            if found:
                detail = found[0]
                status = _ALIYUN_STATUS.get(detail.send_status, SendStatus.SUBMITTED)
                if await queue.settle_unknown(
                    conn,
                    record.id,
                    status,
                    detail.err_code or "OK",
                    f"reconciled with Aliyun QuerySendDetails (SendStatus {detail.send_status})",
                ):
                    counts.settled += 1
            elif age >= self._settings.reconcile_query_window_seconds and verification_code:
                # Resending would deliver the masked code the record keeps, long expired.
                await apps_repo.lock_app(conn, record.app_no)  # before the webhook check
                if await queue.settle_unknown(
                    conn,
                    record.id,
                    SendStatus.FAILED,
                    NOT_ACCEPTED,
                    "Aliyun has no record of this message; a verification code is not sent "
                    "again (it has expired by now)",
                    not_billed=True,
                ):
                    await apps_repo.refund_quota(conn, record.app_no, record.fee)
                    counts.not_sent += 1
            elif age >= self._settings.reconcile_query_window_seconds and (
                await queue.settle_unknown(
                    conn,
                    record.id,
                    SendStatus.QUEUED,
                    NOT_ACCEPTED,
                    "Aliyun has no record of this message: queued to be sent again",
                )
            ):
                counts.requeued += 1


def _aliyun_adapter(resolved: ResolvedRoute | None, record: UnknownRecord) -> AliyunAdapter | None:
    """The adapter of the channel the record went through, if it can be queried."""
    if resolved is None:
        return None
    for step in (resolved, *resolved.fallbacks):
        if step.route.provider_no == record.provider_no and isinstance(step.adapter, AliyunAdapter):
            return step.adapter
    return None
