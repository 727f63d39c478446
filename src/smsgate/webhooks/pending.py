"""The `webhook_pending` flag every writer sets in the UPDATE that makes a record final."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, exists, select
from sqlalchemy.sql.elements import ColumnElement

from smsgate.db.models import AppConfig, SendLog, SendStatus

_log = cast(Table, SendLog.__table__)
_app = cast(Table, AppConfig.__table__)

# A record in one of these states never changes again, so it is notified exactly once.
# UNKNOWN is not final: a delivery report or reconciliation settles it later.
FINAL_STATUSES = frozenset(
    {SendStatus.DELIVERED, SendStatus.UNDELIVERED, SendStatus.FAILED, SendStatus.CANCELLED}
)


def is_final(status: int) -> bool:
    return status in FINAL_STATUSES


def app_has_callback() -> ColumnElement[bool]:
    """EXISTS over the record's app: correlated, so it costs no extra round trip.

    Use as the value of `webhook_pending` in an UPDATE of sms_send_log that sets a final
    status: `update(log).values(status=..., webhook_pending=app_has_callback())`.
    """
    query: Any = (
        select(1)
        .select_from(_app)
        .where(
            _app.c.app_no == _log.c.app_no,
            _app.c.callback_url.is_not(None),
            _app.c.callback_url != "",
        )
    )
    return exists(query.correlate(_log))
