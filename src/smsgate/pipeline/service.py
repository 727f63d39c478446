"""The queued send API's rules: accept (QUEUED, committed), report status, cancel."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.apps import repository as apps_repo
from smsgate.apps.schemas import AppSnapshot
from smsgate.db.base import iso_utc, utcnow
from smsgate.db.models import SendStatus
from smsgate.errors import BadRequest, NotFound
from smsgate.pipeline import repository as queue
from smsgate.sending.schemas import SendMessageBody, SendOutcome
from smsgate.sending.service import SendingService

MAX_SCHEDULE_AHEAD = timedelta(days=90)


def due_time(send_at: datetime | None) -> datetime:
    """Naive UTC due time; a time in the past means now."""
    now = utcnow()
    if send_at is None:
        return now
    if send_at.tzinfo is None:
        raise BadRequest("sendAt needs a time zone, e.g. 2026-12-01T09:00:00+08:00")
    due = send_at.astimezone(UTC).replace(tzinfo=None)
    if due - now > MAX_SCHEDULE_AHEAD:
        raise BadRequest(f"sendAt may be at most {MAX_SCHEDULE_AHEAD.days} days ahead")
    return max(due, now)


class QueueService:
    def __init__(self, engine: AsyncEngine, sending: SendingService) -> None:
        self._engine = engine
        self._sending = sending

    async def enqueue(
        self, app: AppSnapshot, body: SendMessageBody, send_at: datetime | None
    ) -> SendOutcome:
        """Every rule of the send API, then QUEUED records committed with the quota taken."""
        return await self._sending.send_message(app, body, queue_at=due_time(send_at))

    async def status(self, app: AppSnapshot, request_id: str) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            rows = await queue.request_records(conn, app.app_no, request_id)
        if not rows:
            raise NotFound(f"request {request_id} does not exist for app {app.app_no}")
        counts = Counter(SendStatus(row["status"]).name for row in rows)
        return {
            "total": len(rows),
            "byStatus": dict(sorted(counts.items())),
            "results": [
                {
                    "phone": row["phone_number"],
                    "status": SendStatus(row["status"]).name,
                    "fee": row["fee"],
                    "code": row["code"],
                    "message": row["message"],
                    "providerMessageId": row["provider_message_id"],
                    "attempts": row["attempts"],
                    "nextAttemptAt": iso_utc(row["next_attempt_at"])
                    if row["status"] == queue.QUEUED
                    else None,
                    "reportCode": row["report_code"],
                    "deliveredAt": iso_utc(row["delivered_at"]),
                }
                for row in rows
            ],
        }

    async def cancel(self, app: AppSnapshot, request_id: str) -> dict[str, int]:
        """Cancel what no worker has taken yet, and give its quota back."""
        async with self._engine.begin() as conn:
            await apps_repo.lock_app(conn, app.app_no)
            if not await queue.request_records(conn, app.app_no, request_id):
                raise NotFound(f"request {request_id} does not exist for app {app.app_no}")
            cancelled, fee = await queue.cancel_queued(
                conn, app.app_no, request_id, f"cancel:{uuid.uuid4().hex}"
            )
            await apps_repo.refund_quota(conn, app.app_no, fee)
        return {"cancelled": cancelled, "refunded": fee}
