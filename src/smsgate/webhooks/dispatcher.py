"""The webhook dispatcher: moves flagged records into the outbox and POSTs due deliveries.

Runs as a background task in every `serve` process (and in workers); any number of them
may run against MariaDB, where claims use SKIP LOCKED. Delivery is at least once: a
receiver deduplicates on `recordId`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate import __version__
from smsgate.crypto import SecretBox
from smsgate.db.base import iso_utc, utcnow
from smsgate.db.models import SendStatus
from smsgate.webhooks import repository as repo
from smsgate.webhooks.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
)

log = logging.getLogger("smsgate.webhooks")

BASE_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)
MAX_AGE = timedelta(hours=24)


def retry_delay(
    attempts: int, base: timedelta, cap: timedelta, jitter: Callable[[], float]
) -> timedelta:
    """Delay after the `attempts`-th failed attempt: base doubling per attempt, capped, then
    scaled by `jitter()` in [0.5, 1] so receivers that failed together do not retry together."""
    exponent = min(attempts - 1, 32)  # 2**32 * 10 s is far past any cap
    return min(base * (1 << exponent), cap) * jitter()


def _jitter() -> float:
    return random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries, not a secret


def event_body(record: dict[str, Any]) -> bytes:
    """The JSON POSTed for one final record; stored, so every attempt sends these bytes."""
    return orjson.dumps(
        {
            "type": "message.status",
            "requestId": record["request_id"],
            "recordId": record["id"],
            "appNo": record["app_no"],
            "businessNo": record["business_no"],
            "phone": record["phone_number"],
            "status": SendStatus(record["status"]).name,
            "code": record["code"],
            "message": record["message"],
            "reportCode": record["report_code"],
            "reportMessage": record["report_message"],
            "deliveredAt": iso_utc(record["delivered_at"]),
            "fee": record["fee"],
            "occurredAt": iso_utc(record["updated_at"]),
        }
    )


class WebhookDispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        secrets: SecretBox,
        http: aiohttp.ClientSession,
        *,
        base_delay: timedelta = BASE_DELAY,
        max_delay: timedelta = MAX_DELAY,
        max_age: timedelta = MAX_AGE,
        poll_seconds: float = 1.0,
        request_timeout_seconds: float = 10.0,
        batch_size: int = 100,
        concurrency: int = 16,
        jitter: Callable[[], float] = _jitter,
    ) -> None:
        self._engine = engine
        self._secrets = secrets
        self._http = http
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._max_age = max_age
        self._poll_seconds = poll_seconds
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_seconds)
        # Longer than one POST can take, so a live dispatcher never loses its lease.
        self._lease = timedelta(seconds=request_timeout_seconds * 3 + 30)
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._jitter = jitter
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Look for work now instead of at the next poll (after a replay, for instance)."""
        self._wake.set()

    async def run(self) -> None:
        """Background task: claim and deliver until `stop()` (or cancelled)."""
        while not self._stopping:
            try:
                busy = await self.run_once()
            except Exception:  # the database may be down for a while: try again later
                log.exception("webhook dispatch failed")
                busy = 0
            if busy:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()

    def stop(self) -> None:
        """Finish the current round, then return from `run()`: stopping between database
        calls, not inside one, leaves no query half-done on the way out."""
        self._stopping = True
        self._wake.set()

    async def run_once(self) -> int:
        """One round: move flagged records into the outbox, then POST what is due.
        Returns how many events and attempts it handled (0: nothing to do)."""
        return await self.claim_events() + await self.deliver_due()

    async def claim_events(self) -> int:
        async with self._engine.begin() as conn:
            records = await repo.flagged_records(conn, self._batch_size)
            return await repo.enqueue(conn, [(r, event_body(r)) for r in records])

    async def deliver_due(self) -> int:
        async with self._engine.begin() as conn:
            due = await repo.lease_due(conn, self._batch_size, self._lease)
            targets = await repo.app_targets(conn, [d.app_no for d in due]) if due else {}
        if not due:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(d, targets.get(d.app_no)) for d in due))
        async with self._engine.begin() as conn:
            for delivery, (at, error) in zip(due, outcomes, strict=True):
                if error is None:
                    await repo.mark_delivered(conn, delivery, at)
                else:
                    retry_at = self._retry_at(delivery, at)
                    await repo.mark_failed(conn, delivery, at, error, retry_at)
                    if retry_at is None:
                        log.warning(
                            "webhook %s of app %s dead after %d attempts: %s",
                            delivery.id,
                            delivery.app_no,
                            delivery.attempts + 1,
                            error,
                        )
        return len(due)

    def _retry_at(self, delivery: repo.DueDelivery, at: datetime) -> datetime | None:
        first = delivery.first_attempt_at or at
        deadline = first + self._max_age
        if at >= deadline:
            return None
        delay = retry_delay(delivery.attempts + 1, self._base_delay, self._max_delay, self._jitter)
        # The last try lands on the deadline itself, so the full window is used.
        return min(at + delay, deadline)

    async def _attempt(
        self, delivery: repo.DueDelivery, target: tuple[str | None, str | None] | None
    ) -> tuple[datetime, str | None]:
        """POST once: (when, None) on a 2xx answer, else (when, why it failed)."""
        url, sealed = target or (None, None)
        if not url:
            return utcnow(), "the app has no callback URL"
        try:
            secret = self._secrets.reveal(sealed or "")
        except ValueError as exc:
            return utcnow(), f"signing secret unreadable: {exc}"
        if not secret:
            return utcnow(), "the app has no webhook signing secret"
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"smsgate-webhooks/{__version__}",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(secret, timestamp, delivery.body),
            DELIVERY_HEADER: str(delivery.id),
        }
        async with self._slots:
            try:
                # Redirects are not followed: the signed event goes only where it was sent.
                async with self._http.post(
                    url,
                    data=delivery.body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    if 200 <= response.status < 300:
                        return utcnow(), None
                    return utcnow(), f"HTTP {response.status}"
            except TimeoutError:
                return utcnow(), f"no answer within {self._timeout.total:g} s"
            except (aiohttp.ClientError, ValueError) as exc:
                return utcnow(), f"{type(exc).__name__}: {exc}"[:512]
