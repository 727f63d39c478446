"""Pending delivery reports that never find their record do not hold back newer ones."""

from __future__ import annotations

from conftest import Stack, run_sql
from smsgate.config import Settings
from smsgate.crypto import SecretBox
from smsgate.db.models import SendStatus
from smsgate.db.session import create_engine
from smsgate.reports.service import ReportService
from test_reports import add_record, record


async def add_pending(settings: Settings, provider_no: str, message_id: str) -> None:
    await run_sql(
        settings,
        "INSERT INTO sms_pending_report (provider_no, provider_message_id, phone, delivered,"
        " code, message, created_at, updated_at) VALUES (:p, :m, '', 1, 'DELIVRD', 'ok',"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        p=provider_no,
        m=message_id,
    )


async def test_a_sweep_goes_on_past_reports_that_never_find_their_record(
    own_stack: Stack,
) -> None:
    settings = own_stack.settings()
    for n in range(3):  # oldest first: reports for messages another system sent
        await add_pending(settings, "elsewhere", f"orphan-{n}")
    _, record_id = await add_record(settings, "mine", message_id="m-1")
    await add_pending(settings, "mine", "m-1")
    engine = create_engine(settings)
    try:
        reports = ReportService(engine, SecretBox(None), 0)
        applied = [await reports.apply_pending(limit=2) for _ in range(2)]
        status = (await record(settings, record_id))[0]
        # From the start again after the end: the orphans are still looked at.
        again = [await reports.apply_pending(limit=2) for _ in range(2)]
    finally:
        await engine.dispose()
    assert applied == [0, 1]
    assert SendStatus(status) is SendStatus.DELIVERED
    assert again == [0, 0]
    [(left,)] = await run_sql(settings, "SELECT COUNT(*) FROM sms_pending_report")
    assert left == 3  # the orphans wait (until their 24 h are up); the applied one is gone
