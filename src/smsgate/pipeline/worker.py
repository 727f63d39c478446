"""Queue worker: claims due QUEUED records, sends them in provider-sized batches, records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Sequence
from datetime import timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from smsgate.apps import repository as apps_repo
from smsgate.config import Settings
from smsgate.db.base import utcnow
from smsgate.db.models import SendStatus
from smsgate.db.session import in_transaction
from smsgate.pipeline import repository as queue
from smsgate.pipeline.reconcile import Reconciler
from smsgate.pipeline.repository import ClaimedRecord
from smsgate.providers.base import ErrorKind
from smsgate.records import attempts as attempts_repo
from smsgate.records import repository as records_repo
from smsgate.sending.fee import count_segments
from smsgate.sending.render import render_content
from smsgate.sending.service import (
    CIRCUIT_OPEN,
    SendingService,
    SentVia,
    record_outcomes,
    write_reroutes,
)

log = logging.getLogger("smsgate.worker")


def retry_delay(attempt: int, base_seconds: float) -> float:
    """Exponential backoff with full jitter: up to base * 2^(attempt-1), capped at 10 min."""
    ceiling = min(600.0, base_seconds * 2 ** (attempt - 1))
    return base_seconds / 2 + random.uniform(0, ceiling)  # noqa: S311 - jitter, not secrecy


class QueueWorker:
    """One claim loop per process; `concurrency` requests' batches in flight at once.

    Crash safety: a claimed record is marked `dispatched_at` right before its provider call.
    If this process dies, another worker's reaper finds the claim past its lease: records
    not yet dispatched go back to the queue, dispatched ones become UNKNOWN (they may have
    been sent; they are never resent blindly). On a graceful stop the loop stops claiming,
    finishes what is in flight, and releases claims it had not started.
    """

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        sending: SendingService,
        name: str | None = None,
        concurrency: int = 4,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._sending = sending
        self._name = (name or f"w-{uuid.uuid4().hex[:8]}")[:40]
        self._concurrency = max(1, concurrency)
        self._skip_locked = engine.dialect.name != "sqlite"
        self._stopping = asyncio.Event()
        # Claimed, not yet dispatched: id -> the claim's token (released on a graceful stop).
        self._undispatched: dict[int, str] = {}
        self.sent = 0  # records this worker handed to a provider (for logs and tests)

    def stop(self) -> None:
        """Stop claiming; `run()` returns once what is in flight is recorded."""
        self._stopping.set()

    async def run(self) -> None:
        reaper = asyncio.create_task(self._reap_forever(), name=f"{self._name}-reaper")
        reconciler = asyncio.create_task(self._reconcile_forever(), name=f"{self._name}-reconciler")
        try:
            while not self._stopping.is_set():
                try:
                    worked = await self.run_once()
                except Exception:  # the database may be down for a while: keep trying
                    log.exception("queue worker %s: claim round failed", self._name)
                    worked = False
                if not worked:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._stopping.wait(), self._settings.worker_poll_seconds
                        )
        finally:
            # The helper loops stop between database calls; cancelled only if stuck.
            self._stopping.set()
            for task in (reaper, reconciler):
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(task, 10)
            await self._release_undispatched()

    async def run_once(self) -> bool:
        """One claim round; True when it found work."""
        token = f"{self._name}:{uuid.uuid4().hex[:16]}"
        async with self._engine.begin() as conn:
            claimed = await queue.claim_due(
                conn, token, self._settings.worker_batch_size, self._skip_locked
            )
        if not claimed:
            return False
        self._undispatched.update((record.id, token) for record in claimed)
        # One group per request and template: records of a request that went through a
        # fallback before hold that fallback's text, the others the primary's.
        groups: dict[tuple[str, str], list[ClaimedRecord]] = {}
        for record in claimed:
            groups.setdefault((record.request_id, record.template_no), []).append(record)
        limit = asyncio.Semaphore(self._concurrency)

        async def bounded(records: list[ClaimedRecord]) -> None:
            async with limit:
                try:
                    await self._send_request(records)
                except Exception:
                    log.exception("queue worker %s: request %s", self._name, records[0].request_id)

        await asyncio.gather(*(bounded(records) for records in groups.values()))
        return True

    async def _send_request(self, records: list[ClaimedRecord]) -> None:
        """Send the claimed records of one request and template (same content, params)."""
        first = records[0]
        ids = [record.id for record in records]
        resolved = await self._sending.route_for(first.business_no)
        app = await self._sending.app_for(first.app_no)
        problem = None
        if app is None or not app.enabled:
            problem = f"app {first.app_no} is disabled or gone"
        elif resolved is None or resolved.adapter is None or resolved.param_names is None:
            problem = f"business {first.business_no} has no usable channel now"
        else:
            route = resolved.route
            if not (route.business_enabled and resolved.sendable):
                problem = (
                    f"business {first.business_no}, its template, signature or channel "
                    "was disabled after the message was queued"
                )
        params: list[str] = orjson.loads(first.params) if first.params else []
        names = resolved.param_names if resolved is not None else None
        if problem is None and names is not None and len(params) != len(names):
            problem = f"template of business {first.business_no} changed its placeholders"
        if (
            problem is not None
            or resolved is None
            or resolved.adapter is None
            or names is None
            or app is None
        ):
            await self._fail(records, "NOT_SENDABLE", problem or "not sendable")
            return

        primary = resolved.route
        content, fee = first.content, first.fee
        came_back = bool(first.template_no) and first.template_no != primary.template_no
        if came_back:
            # It went out through a fallback before, and that fallback never took it
            # (reconciliation queued it again): the chain starts at the primary, with the
            # primary's own text; the quota it holds is the fallback's fee (`held`).
            content = render_content(primary.template_content, names, params)
            fee = count_segments(content, resolved.adapter.fee_scheme, primary.sign_name)
        max_attempts = self._settings.worker_max_attempts
        token = first.claimed_by
        async with self._engine.begin() as conn:
            sendable = set(await queue.mark_dispatched(conn, ids, token))
            # Attempts number on across retries and a resend after reconciliation.
            before = await attempts_repo.attempt_counts(
                conn, first.request_id, [r.phone for r in records if r.id in sendable]
            )
        for record_id in ids:
            self._undispatched.pop(record_id, None)
        if len(sendable) < len(records):
            # Waited past the lease: the reaper gave these back to the queue, and another
            # worker may be sending them now. Sending them here too would send twice.
            log.warning(
                "queue worker %s: %d record(s) of request %s were taken back before they "
                "were sent (claimed longer than the lease ago); not sending them",
                self._name,
                len(records) - len(sendable),
                first.request_id,
            )
            records = [record for record in records if record.id in sendable]
            if not records:
                return
        phones = [record.phone for record in records]
        by_phone = {record.phone: record for record in records}
        # Retryable errors retry the same channel with backoff first; only the last
        # attempt fails over to the next channel of the chain (docs/failover.md).
        chain = await self._sending.dispatch_chain(
            resolved,
            first.request_id,
            phones,
            params,
            content,
            fee,
            attempts_before=before,
            retryable_fails_over=lambda phone: by_phone[phone].attempts >= max_attempts,
            held={record.phone: record.fee for record in records},
            app_no=first.app_no,
        )
        outcomes, body_by_phone = chain.outcomes, chain.body_by_phone
        self.sent += len(records)
        retry_all = [
            o
            for o in outcomes
            if o.status is SendStatus.FAILED
            and (o.error_kind is ErrorKind.RETRYABLE or o.code == CIRCUIT_OPEN)
            and by_phone[o.phone].attempts < max_attempts
        ]
        final_all = [o for o in outcomes if o not in retry_all]

        async def write_outcome(conn: AsyncConnection) -> None:
            # Only what this claim still holds: a record the reaper or reconciliation moved
            # on meanwhile keeps what they wrote (and its quota).
            held = await queue.hold_claimed(conn, [r.id for r in records], token)
            final = [o for o in final_all if by_phone[o.phone].id in held]
            retry = [o for o in retry_all if by_phone[o.phone].id in held]
            final_phones = {o.phone for o in final}
            # The refund before finish_records: the app row is then held exclusively before
            # its webhook check reads it (read-then-update of one row deadlocks on MySQL).
            # Final phones give back what they hold beyond what they used; a retried phone
            # keeps its record's reservation and gives back what a fallback added to it.
            refund = chain.refund(o.phone for o in final) + sum(
                chain.reserved[o.phone] - by_phone[o.phone].fee for o in retry
            )
            await apps_repo.refund_quota(conn, first.app_no, refund)
            await attempts_repo.insert_attempts(conn, chain.attempts)
            if retry:
                # Back to what they held when claimed (a fallback's extra was given back).
                back_to: dict[int, list[str]] = {}
                for o in retry:
                    if chain.reserved[o.phone] != by_phone[o.phone].fee:
                        back_to.setdefault(by_phone[o.phone].fee, []).append(o.phone)
                for held_fee, retried in back_to.items():
                    await records_repo.hold_fee(conn, first.request_id, retried, held_fee)
                attempt = max(by_phone[o.phone].attempts for o in retry)
                due = utcnow() + timedelta(
                    seconds=retry_delay(attempt, self._settings.worker_retry_base_seconds)
                )
                await queue.requeue(
                    conn, [by_phone[o.phone].id for o in retry], token, due, retry[0].code,
                    f"retry {attempt + 1} of {max_attempts}: {retry[0].message}",
                )  # fmt: skip
            vias = {p: via for p, via in chain.rerouted.items() if p in final_phones}
            if came_back:
                # Sent through the primary this time: the record shows that again.
                back = SentVia(primary.template_no, primary.provider_no, content)
                vias |= {p: back for p in final_phones if p not in chain.rerouted}
            await write_reroutes(conn, first.request_id, vias)
            await records_repo.finish_records(
                conn, first.request_id, record_outcomes(final, body_by_phone)
            )

        # The provider has answered: the outcome must be recorded even if MySQL picks this
        # transaction as a deadlock victim (retried whole; it was rolled back).
        await in_transaction(self._engine, write_outcome)
        await self._sending.block_opt_outs(app, resolved.route, final_all)

    async def _fail(self, records: Sequence[ClaimedRecord], code: str, message: str) -> None:
        ids = [record.id for record in records]
        token = records[0].claimed_by
        async with self._engine.begin() as conn:
            held = await queue.hold_claimed(conn, ids, token)
            refund = sum(r.fee for r in records if r.id in held)
            await apps_repo.refund_quota(conn, records[0].app_no, refund)
            await queue.fail(conn, ids, token, code, message)
        for record_id in ids:
            self._undispatched.pop(record_id, None)

    async def _release_undispatched(self) -> None:
        """Claims taken but never dispatched go back to the queue at once (graceful stop)."""
        if not self._undispatched:
            return
        by_token: dict[str, list[int]] = {}
        for record_id, token in self._undispatched.items():
            by_token.setdefault(token, []).append(record_id)
        ids = sorted(self._undispatched)
        try:
            async with self._engine.begin() as conn:
                for token, claimed in by_token.items():
                    await queue.requeue(
                        conn, sorted(claimed), token, utcnow(), "QUEUED",
                        "released by a stopping worker", True,
                    )  # fmt: skip
            self._undispatched.clear()
        except Exception:
            log.exception("could not release %d claimed records; the reaper will", len(ids))

    async def _reap_forever(self) -> None:
        lease = timedelta(seconds=self._settings.worker_lease_seconds)
        while not self._stopping.is_set():
            try:
                async with self._engine.begin() as conn:
                    requeued, unknown = await queue.reap_lost_claims(conn, lease)
                if requeued or unknown:
                    log.warning(
                        "lost claims: %d record(s) back to the queue, %d left UNKNOWN",
                        requeued,
                        unknown,
                    )
            except Exception:
                log.exception("reaping lost claims failed")
            await self._pause(max(0.5, self._settings.worker_lease_seconds / 3))

    async def _reconcile_forever(self) -> None:
        """Settle UNKNOWN records in the background (pipeline/reconcile.py)."""
        reconciler = Reconciler(self._settings, self._engine, self._sending)
        while not self._stopping.is_set():
            try:
                counts = await reconciler.run_once()
                if counts.settled or counts.requeued or counts.unconfirmed or counts.not_sent:
                    log.info(
                        "reconciled UNKNOWN records: %d settled, %d queued again, %d unconfirmed, "
                        "%d verification codes not sent",
                        counts.settled,
                        counts.requeued,
                        counts.unconfirmed,
                        counts.not_sent,
                    )
            except Exception:
                log.exception("reconciling UNKNOWN records failed")
            await self._pause(self._settings.reconcile_interval_seconds)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the worker is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
