"""Reading send records: search, detail, CSV export, statistics."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from smsgate.db.base import iso_utc
from smsgate.db.models import SendStatus
from smsgate.errors import BadRequest, NotFound
from smsgate.management.service import MAX_PAGE_SIZE
from smsgate.records import attempts as attempts_repo
from smsgate.records import queries
from smsgate.records.queries import RecordFilter

CSV_COLUMNS = [
    ("id", "id"),
    ("createdAt", "created_at"),
    ("requestId", "request_id"),
    ("appNo", "app_no"),
    ("businessNo", "business_no"),
    ("templateNo", "template_no"),
    ("providerNo", "provider_no"),
    ("phoneNumber", "phone_number"),
    ("status", "status"),
    ("fee", "fee"),
    ("code", "code"),
    ("message", "message"),
    ("providerMessageId", "provider_message_id"),
    ("reportCode", "report_code"),
    ("deliveredAt", "delivered_at"),
    ("content", "content"),
]
MAX_STATS_DAYS = 366


def parse_status(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if value.isdigit() and int(value) in SendStatus._value2member_map_:
        return int(value)
    try:
        return int(SendStatus[value.upper()])
    except KeyError:
        names = ", ".join(s.name for s in SendStatus)
        raise BadRequest(f"status must be one of {names}") from None


def record_view(row: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    view = {
        "id": row["id"],
        "requestId": row["request_id"],
        "appNo": row["app_no"],
        "businessNo": row["business_no"],
        "templateNo": row["template_no"],
        "providerNo": row["provider_no"],
        "phoneNumber": row["phone_number"],
        "status": SendStatus(row["status"]).name,
        "fee": row["fee"],
        "code": row["code"],
        "message": row["message"],
        "content": row["content"],
        "providerMessageId": row["provider_message_id"],
        "reportCode": row["report_code"],
        "reportMessage": row["report_message"],
        "reportedAt": _iso(row["reported_at"]),
        "deliveredAt": _iso(row["delivered_at"]),
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
    }
    if detail:
        view["params"] = orjson.loads(row["params"]) if row.get("params") else []
        view["providerResponse"] = row.get("provider_response")
        view["remark"] = row.get("remark")
    return view


def _iso(value: Any) -> str | None:
    return iso_utc(value)


class RecordService:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def search(
        self, where: RecordFilter, page: int = 1, page_size: int = 20
    ) -> dict[str, Any]:
        page = max(1, page)
        page_size = min(max(1, page_size), MAX_PAGE_SIZE)
        async with self._engine.connect() as conn:
            total, rows = await queries.search(conn, where, page, page_size)
        return {
            "items": [record_view(row) for row in rows],
            "total": total,
            "page": page,
            "pageSize": page_size,
        }

    async def get(self, record_id: int) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            row = await queries.get(conn, record_id)
            if row is None:
                raise NotFound(f"send record {record_id} does not exist")
            attempts = await attempts_repo.attempts_for_record(
                conn, row["request_id"], row["phone_number"]
            )
        return {**record_view(row, detail=True), "attempts": [attempt_view(a) for a in attempts]}

    async def export_csv(self, where: RecordFilter) -> AsyncIterator[bytes]:
        """CSV in chunks of about 64 KiB, read through a server-side cursor."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([header for header, _ in CSV_COLUMNS])
        async with self._engine.connect() as conn:
            async for row in queries.stream(conn, where):
                writer.writerow(_csv_row(row))
                if buffer.tell() > 65536:
                    yield buffer.getvalue().encode("utf-8")
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue().encode("utf-8")

    async def stats(
        self, group_by: str, since: date | None, until: date | None, app_no: str | None = None
    ) -> dict[str, Any]:
        if group_by not in {"day", "channel", "app"}:
            raise BadRequest("groupBy must be day, channel or app")
        # Days are UTC days, as created_at is stored (naive UTC), whatever the server's zone.
        until = until or datetime.now(UTC).date() + timedelta(days=1)
        since = since or until - timedelta(days=30)
        if since >= until:
            raise BadRequest("from must be before to")
        if (until - since).days > MAX_STATS_DAYS:
            raise BadRequest(f"the range may span at most {MAX_STATS_DAYS} days")
        async with self._engine.connect() as conn:
            rows = await queries.stats(conn, group_by, since, until, app_no)
        return {
            "groupBy": group_by,
            "from": since.isoformat(),
            "to": until.isoformat(),
            "rows": rows,
        }

    async def status_counts(self, group_by: str, since: date, until: date) -> list[dict[str, Any]]:
        """[{key, status, count}] per day, channel or app: the console dashboard's data."""
        if group_by not in {"day", "channel", "app"}:
            raise BadRequest("groupBy must be day, channel or app")
        if (until - since).days > MAX_STATS_DAYS:
            raise BadRequest(f"the range may span at most {MAX_STATS_DAYS} days")
        async with self._engine.connect() as conn:
            return await queries.status_counts(conn, group_by, since, until)


def _csv_row(row: dict[str, Any]) -> list[Any]:
    values = []
    for _, column in CSV_COLUMNS:
        value = row[column]
        if column == "status":
            value = SendStatus(value).name
        elif isinstance(value, datetime):
            value = iso_utc(value)
        values.append(_defuse(value))
    return values


def _defuse(value: Any) -> Any:
    # A cell starting with = + - @ is a formula in spreadsheets (CSV injection): quote it.
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@"} and not value[1:2].isdigit():
        return "'" + value
    return value


def attempt_view(row: dict[str, Any]) -> dict[str, Any]:
    """One provider call made for a record (docs/failover.md)."""
    return {
        "attempt": row["attempt"],
        "providerNo": row["provider_no"],
        "templateNo": row["template_no"],
        "startedAt": iso_utc(row["started_at"]),
        "finishedAt": iso_utc(row["finished_at"]),
        "status": SendStatus(row["status"]).name,
        "code": row["code"],
        "message": row["message"],
    }
