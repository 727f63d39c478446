"""Dead letters for the admin API and the console: list them, replay one."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.auth.service import Principal, require_admin
from smsgate.db.base import iso_utc
from smsgate.errors import Conflict, NotFound
from smsgate.management.schemas import Page
from smsgate.management.service import MAX_PAGE_SIZE
from smsgate.webhooks import repository as repo
from smsgate.webhooks.dispatcher import WebhookDispatcher


def dead_letter_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "appNo": row["app_no"],
        "recordId": row["record_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "firstAttemptAt": iso_utc(row["first_attempt_at"]),
        "lastAttemptAt": iso_utc(row["last_attempt_at"]),
        "lastError": row["last_error"],
        "event": orjson.loads(row["body"]),
        "createdAt": iso_utc(row["created_at"]),
    }


class WebhookService:
    def __init__(self, engine: AsyncEngine, dispatcher: WebhookDispatcher | None = None) -> None:
        self._engine = engine
        self._dispatcher = dispatcher

    async def dead_letters(
        self, *, app_no: str | None = None, page: int = 1, page_size: int = 50
    ) -> Page:
        page = max(1, page)
        page_size = min(max(1, page_size), MAX_PAGE_SIZE)
        async with self._engine.connect() as conn:
            rows, total = await repo.dead_letters(
                conn, app_no or None, (page - 1) * page_size, page_size
            )
        items = [dead_letter_view(row) for row in rows]
        return Page(items=items, total=total, page=page, page_size=page_size)

    async def replay(self, principal: Principal, delivery_id: int) -> dict[str, Any]:
        """Send a dead letter again now, with a fresh 24-hour retry window."""
        require_admin(principal)
        async with self._engine.begin() as conn:
            row = await repo.delivery(conn, delivery_id)
            if row is None:
                raise NotFound(f"webhook delivery {delivery_id} does not exist")
            if not await repo.requeue_dead(conn, delivery_id):
                raise Conflict(
                    f"webhook delivery {delivery_id} is {row['status']}, not dead: "
                    "only dead letters can be replayed"
                )
            await repo.audit(
                conn,
                principal.username,
                "replay",
                f"{row['app_no']}/{row['record_id']}",
                orjson.dumps({"status": ["dead", "pending"]}).decode(),
            )
        if self._dispatcher is not None:
            self._dispatcher.wake()
        return {"id": delivery_id, "appNo": row["app_no"], "status": repo.PENDING}
