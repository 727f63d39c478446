"""Send records past their retention go (with their attempts); records in flight stay."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta

from conftest import Stack, run_sql
from servers import SMSGATE
from smsgate.config import Settings
from smsgate.db.models import SendStatus
from smsgate.db.session import create_engine
from smsgate.housekeeping import Housekeeping
from smsgate.records.retention import purge_records

OLD, NEW = timedelta(days=40), timedelta(days=1)
# (status, age): the old final and SUBMITTED ones go; in-flight and new ones stay.
RECORDS = [
    (SendStatus.DELIVERED, OLD),
    (SendStatus.SUBMITTED, OLD),
    (SendStatus.FAILED, OLD),
    (SendStatus.QUEUED, OLD),
    (SendStatus.SENDING, OLD),
    (SendStatus.UNKNOWN, OLD),
    (SendStatus.DELIVERED, NEW),
]
GONE = {"DELIVERED-old", "SUBMITTED-old", "FAILED-old"}


async def add_records(settings: Settings) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    request_id = str(uuid.uuid4())  # one request: a kept record's attempts must stay
    for n, (status, age) in enumerate(RECORDS):
        phone = f"+86138000000{n:02d}"
        at = now - age
        await run_sql(
            settings,
            "INSERT INTO sms_send_log (request_id, app_no, business_no, template_no,"
            " provider_no, status, fee, phone_number, message, code, content, created_at,"
            " updated_at) VALUES (:r, 'A', 'B', 'T', 'P', :s, 1, :ph, :m, 'OK', 'hi', :t, :t)",
            r=request_id,
            s=int(status),
            ph=phone,
            m=f"{status.name}-{'old' if age is OLD else 'new'}",
            t=at,
        )
        await run_sql(
            settings,
            "INSERT INTO sms_send_attempt (request_id, phone_number, attempt, provider_no,"
            " template_no, started_at, finished_at, status, code, message, created_at,"
            " updated_at) VALUES (:r, :ph, 1, 'P', 'T', :t, :t, :s, 'OK', '', :t, :t)",
            r=request_id,
            ph=phone,
            s=int(status),
            t=at,
        )


async def left(settings: Settings) -> tuple[set[str], int]:
    records = {m for (m,) in await run_sql(settings, "SELECT message FROM sms_send_log")}
    [(attempts,)] = await run_sql(settings, "SELECT COUNT(*) FROM sms_send_attempt")
    return records, int(attempts)


def everything() -> set[str]:
    return {f"{s.name}-{'old' if a is OLD else 'new'}" for s, a in RECORDS}


async def test_purge_deletes_old_records_not_in_flight_in_batches(own_stack: Stack) -> None:
    settings = own_stack.settings()
    await add_records(settings)
    engine = create_engine(settings)
    seen: list[int] = []
    try:
        before = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
        deleted = await purge_records(engine, before, batch=2, progress=seen.append)
    finally:
        await engine.dispose()
    assert deleted == 3 and seen == [2, 3]
    assert await left(settings) == (everything() - GONE, len(RECORDS) - 3)


async def test_housekeeping_applies_the_retention_setting(own_stack: Stack) -> None:
    settings = own_stack.settings()
    await add_records(settings)
    engine = create_engine(settings)
    try:
        kept_forever = await Housekeeping(engine).run_once()
        after_default = await left(settings)
        with_retention = await Housekeeping(engine, record_retention_days=30).run_once()
    finally:
        await engine.dispose()
    assert kept_forever[2] == 0 and after_default == (everything(), len(RECORDS))
    assert with_retention[2] == 3
    assert (await left(settings))[0] == everything() - GONE


async def test_records_purge_command(own_stack: Stack) -> None:
    settings = own_stack.settings()
    await add_records(settings)
    command = [SMSGATE, "records", "purge", "--older-than-days", "30"]
    dry = subprocess.run(
        [*command, "--dry-run"], env=own_stack.env(), capture_output=True, text=True, timeout=60
    )
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("3 record(s) created before ")
    assert (await left(settings))[0] == everything()
    done = subprocess.run(command, env=own_stack.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 3 record(s) created before ")
    assert "deleted 3 record(s)..." in done.stderr  # progress
    assert (await left(settings))[0] == everything() - GONE
    refused = subprocess.run(
        [SMSGATE, "records", "purge", "--older-than-days", "0"],
        env=own_stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "older-than-days" in refused.stderr


async def test_a_record_whose_webhook_is_still_due_is_kept(own_stack: Stack) -> None:
    settings = own_stack.settings()
    await add_records(settings)
    await run_sql(
        settings,
        "UPDATE sms_send_log SET webhook_pending = 1 WHERE message = 'FAILED-old'",
    )
    engine = create_engine(settings)
    try:
        before = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
        assert await purge_records(engine, before) == 2
    finally:
        await engine.dispose()
    assert (await left(settings))[0] == everything() - {"DELIVERED-old", "SUBMITTED-old"}
