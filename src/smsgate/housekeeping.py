"""Periodic clean-up of rows that are only needed for a while."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, delete
from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.db.base import utcnow
from smsgate.db.models import WebhookDelivery
from smsgate.idempotency.service import IdempotencyService
from smsgate.records.retention import purge_records

log = logging.getLogger("smsgate.housekeeping")

_deliveries = cast(Table, WebhookDelivery.__table__)

# Delivered webhook events are kept a week for support questions ("did you call us?").
DELIVERED_WEBHOOKS_KEPT = timedelta(days=7)


class Housekeeping:
    """Every `interval` (and once at start): expired Idempotency-Keys (24 h) and delivered
    webhook events older than a week are deleted, and send records older than
    `record_retention_days` (0: kept forever) that are not in flight. Safe in any number of
    processes."""

    def __init__(
        self,
        engine: AsyncEngine,
        interval_seconds: float = 3600.0,
        *,
        record_retention_days: int = 0,
    ) -> None:
        self._engine = engine
        self._interval = interval_seconds
        self._retention_days = record_retention_days
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run_once(self) -> tuple[int, int, int]:
        keys = await IdempotencyService(self._engine).purge_expired()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(_deliveries).where(
                    _deliveries.c.status == "delivered",
                    _deliveries.c.delivered_at < utcnow() - DELIVERED_WEBHOOKS_KEPT,
                )
            )
        records = 0
        if self._retention_days:
            before = utcnow() - timedelta(days=self._retention_days)
            records = await purge_records(self._engine, before)
        return keys, int(result.rowcount), records

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                keys, webhooks, records = await self.run_once()
                if keys or webhooks or records:
                    log.info(
                        "housekeeping: removed %d expired idempotency key(s), %d old webhook "
                        "event(s), %d send record(s) past retention",
                        keys,
                        webhooks,
                        records,
                    )
            except Exception:  # the database may be down for a while: next round
                log.exception("housekeeping failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
