"""Reconciling UNKNOWN records: Aliyun QuerySendDetails through the simulator, report window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from conftest import Stack, World, make_world, run_sql
from providers.conftest import AK, SECRET, running
from smsgate.db.models import SendStatus
from smsgate.providers.simulators import aliyun as sim

URL = "/api/v1/send-message"
PHONE = "+8613800138000"


def fast_worker(stack: Stack, **extra: Any) -> Any:
    return stack.settings(
        run_worker=True,
        worker_poll_seconds=0.05,
        reconcile_interval_seconds=0.1,
        reconcile_query_after_seconds=0,
        **extra,
    )


async def status_of(world: World, request_id: str) -> tuple[SendStatus, str]:
    [(status, code)] = await run_sql(
        world.settings,
        "SELECT status, code FROM sms_send_log WHERE request_id = :r",
        r=request_id,
    )
    return SendStatus(status), code


async def wait_for_status(
    world: World, request_id: str, wanted: SendStatus, seconds: float = 15
) -> str:
    deadline = time.monotonic() + seconds
    while True:
        status, code = await status_of(world, request_id)
        if status is wanted:
            return code
        assert time.monotonic() < deadline, (status, code)
        await asyncio.sleep(0.05)


async def aliyun_world(settings: Any, url: str) -> World:
    return await make_world(
        settings, channel_no="AliYun", endpoint=url, access_key_id=AK, access_key_secret=SECRET
    )


async def lose_the_answer(
    client: Any, world: World, before: Callable[[], None] | None = None
) -> str:
    """Send, then make the record UNKNOWN as if the answer had been lost after Aliyun took
    the message (a timeout after the request was written). `before` runs just before the
    record becomes UNKNOWN: the reconciler may look at it from that moment on."""
    response = await client.post(
        URL,
        json={"businessNo": world.business_no, "phones": [PHONE], "params": ["1234"]},
        headers=world.auth,
    )
    assert response.status_code == 200, response.text
    request_id: str = response.json()["requestId"]
    if before is not None:
        before()
    await run_sql(
        world.settings,
        "UPDATE sms_send_log SET status = :s, code = 'TIMEOUT', provider_message_id = NULL "
        "WHERE request_id = :r",
        s=int(SendStatus.UNKNOWN),
        r=request_id,
    )
    return request_id


def calls(simulator: Any, action: str) -> list[dict[str, Any]]:
    return [r for r in simulator.requests if r.get("params", {}).get("Action") == action]


async def test_unknown_aliyun_record_is_settled_by_query_and_not_resent(
    stack: Stack, client_for: Any
) -> None:
    async with running(sim.create_app) as simulator:
        settings = fast_worker(stack, reconcile_query_window_seconds=60)
        world = await aliyun_world(settings, simulator.url)
        async with client_for(settings) as client:
            request_id = await lose_the_answer(client, world)
            code = await wait_for_status(world, request_id, SendStatus.DELIVERED)
        sends, queries = calls(simulator, "SendSms"), calls(simulator, "QuerySendDetails")
    assert code == "DELIVERED"
    assert len(sends) == 1  # never resent
    assert queries[0]["params"]["PhoneNumber"] == "8613800138000"


async def test_aliyun_message_never_accepted_is_queued_and_sent_again(
    stack: Stack, client_for: Any
) -> None:
    async with running(sim.create_app) as simulator:
        settings = fast_worker(stack, reconcile_query_window_seconds=0)
        world = await aliyun_world(settings, simulator.url)
        async with client_for(settings) as client:
            # As if Aliyun had never accepted it: forgotten before the record is UNKNOWN,
            # so no reconcile round can find it there first.
            request_id = await lose_the_answer(client, world, simulator.state.sent.clear)
            await wait_for_status(world, request_id, SendStatus.SUBMITTED)
        sends = calls(simulator, "SendSms")
    assert len(sends) == 2
    attempts = await run_sql(
        settings,
        "SELECT attempt, status FROM sms_send_attempt WHERE request_id = :r ORDER BY attempt",
        r=request_id,
    )
    assert [tuple(a) for a in attempts] == [
        (1, int(SendStatus.SUBMITTED)),
        (2, int(SendStatus.SUBMITTED)),
    ]


async def test_other_providers_stay_unknown_until_the_report_window_passes(
    stack: Stack, client_for: Any
) -> None:
    # MariaDB keeps updated_at in whole seconds, so the age the reconciler computes can be
    # up to 1 s more than the real one: the window is long enough to see UNKNOWN first.
    window = 3.0
    settings = fast_worker(stack, reconcile_report_window_seconds=window)
    world = await make_world(settings, channel_ext={"error_kind": "ambiguous"})
    await run_sql(
        settings,
        "UPDATE sms_app_config SET callback_url = 'http://127.0.0.1:9/hook' WHERE app_no = :a",
        a=world.app_no,
    )
    async with client_for(settings) as client:
        started = time.monotonic()
        response = await client.post(
            URL,
            json={"businessNo": world.business_no, "phones": [PHONE], "params": ["1234"]},
            headers=world.auth,
        )
        request_id = response.json()["requestId"]
        assert (await status_of(world, request_id))[0] is SendStatus.UNKNOWN
        deadline = started + window + 15
        while True:
            status, code = await status_of(world, request_id)
            if status is not SendStatus.UNKNOWN:
                break
            assert time.monotonic() < deadline, (status, code)
            await asyncio.sleep(0.05)
        settled_after = time.monotonic() - started
    assert (status, code) == (SendStatus.FAILED, "UNCONFIRMED")
    # Not before the window (less the up to 1 s that whole-second storage can cut off).
    assert settled_after >= window - 1, settled_after
    [(attempts,)] = await run_sql(
        settings, "SELECT COUNT(*) FROM sms_send_attempt WHERE request_id = :r", r=request_id
    )
    assert attempts == 1  # not resent
    # The final status is handed to the app's webhook like any other: flagged, or already
    # moved to the webhook outbox by the dispatcher.
    [(pending, delivered)] = await run_sql(
        settings,
        "SELECT l.webhook_pending, (SELECT COUNT(*) FROM sms_webhook_delivery d "
        "WHERE d.record_id = l.id) FROM sms_send_log l WHERE l.request_id = :r",
        r=request_id,
    )
    assert pending or delivered
