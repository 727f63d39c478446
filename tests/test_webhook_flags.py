"""Every way a record becomes final flags it for the app's webhook: refused phones,
cancelled queued messages, messages a worker could not send."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import Stack, make_world, run_sql
from test_webhooks import set_callback


async def flags(world: Any) -> dict[str, tuple[int, bool]]:
    """Status, and whether the app's webhook will hear of it: still flagged, or already
    moved into the outbox by the dispatcher running in the app."""
    rows = await run_sql(
        world.settings,
        "SELECT l.phone_number, l.status, l.webhook_pending,"
        " (SELECT COUNT(*) FROM sms_webhook_delivery d WHERE d.record_id = l.id)"
        " FROM sms_send_log l WHERE l.app_no = :a",
        a=world.app_no,
    )
    return {
        phone: (int(status), bool(pending) or int(queued) > 0)
        for phone, status, pending, queued in rows
    }


async def test_refused_and_cancelled_records_are_flagged(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    await set_callback(world.settings, world.app_no, "https://example.test/hook")
    await run_sql(
        world.settings,
        "INSERT INTO sms_blocklist (phone, is_prefix, app_no, reason, created_by, created_at,"
        " updated_at) VALUES ('+8613900139000', 0, :a, 'test', 'test', CURRENT_TIMESTAMP,"
        " CURRENT_TIMESTAMP)",
        a=world.app_no,
    )
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with client_for(world.settings) as client:
        sent = await client.post(
            "/api/v1/send-message",
            json={"businessNo": world.business_no, "params": ["1"],
                  "phones": ["+8613800138000", "+8613900139000"]},
            headers=world.auth,
        )  # fmt: skip
        assert sent.status_code == 207, sent.text
        queued = await client.post(
            "/api/v1/messages",
            json={"businessNo": world.business_no, "params": ["1"],
                  "phones": ["+8613700137000"], "sendAt": later},
            headers=world.auth,
        )  # fmt: skip
        await client.delete(f"/api/v1/messages/{queued.json()['requestId']}", headers=world.auth)
    found = await flags(world)
    assert found["+8613900139000"] == (5, True)  # FAILED (blocked) at insert: flagged
    assert found["+8613800138000"] == (2, False)  # SUBMITTED is not final
    assert found["+8613700137000"] == (6, True)  # CANCELLED: flagged


async def test_worker_failures_are_flagged(stack: Stack, client_for: Any) -> None:
    # No config cache: the SQL change below must be seen by the worker at once.
    settings = stack.settings(run_worker=True, worker_poll_seconds=0.05, config_cache_ttl_seconds=0)
    world = await make_world(settings)
    await set_callback(world.settings, world.app_no, "https://example.test/hook")
    async with client_for(world.settings) as client:
        # The business is disabled after the message was queued: NOT_SENDABLE. Scheduled
        # hours ahead and made due by SQL only once the business is disabled: a send time a
        # moment ahead could already be due when stored (whole seconds on MariaDB).
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        queued = await client.post(
            "/api/v1/messages",
            json={"businessNo": world.business_no, "params": ["1"],
                  "phones": ["+8613800138000"], "sendAt": later},
            headers=world.auth,
        )  # fmt: skip
        assert queued.status_code == 202
        await run_sql(
            world.settings,
            "UPDATE sms_business_config SET status = 0 WHERE business_no = :b",
            b=world.business_no,
        )
        await run_sql(
            world.settings,
            "UPDATE sms_send_log SET next_attempt_at = :t WHERE request_id = :r",
            t=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1),
            r=queued.json()["requestId"],
        )
        deadline = time.monotonic() + 15
        while (found := (await flags(world))["+8613800138000"])[0] != 5:
            assert found[0] in (0, 1), found  # QUEUED or SENDING until it fails; not sent
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.05)
    assert found == (5, True)
    # Nothing was sent: the quota is given back and the record says it was not billed.
    [(fee, used)] = await run_sql(
        world.settings,
        "SELECT l.fee, a.use_number FROM sms_send_log l JOIN sms_app_config a"
        " ON a.app_no = l.app_no WHERE l.request_id = :r",
        r=queued.json()["requestId"],
    )
    assert (fee, used) == (0, 0)
