"""The queued send API and its workers: accept, send, status, cancel, retries, fairness, leases."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import Stack, make_world, run_sql
from smsgate.db.models import SendStatus

URL = "/api/v1/messages"


def worker_settings(stack: Stack, **extra: Any) -> Any:
    return stack.settings(
        run_worker=True, worker_poll_seconds=0.05, worker_retry_base_seconds=0.05, **extra
    )


def body(world: Any, phones: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "businessNo": world.business_no,
        "phones": phones or ["+8613800138000"],
        "params": ["1234"],
        **extra,
    }


async def wait_for(
    client: Any, world: Any, request_id: str, done: set[str], seconds: float = 15
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        status = await client.get(f"{URL}/{request_id}", headers=world.auth)
        assert status.status_code == 200, status.text
        if set(status.json()["data"]["byStatus"]) <= done:
            return status.json()
        assert time.monotonic() < deadline, status.json()
        await asyncio.sleep(0.05)


async def statuses(world: Any) -> dict[str, int]:
    rows = await run_sql(
        world.settings,
        "SELECT status, COUNT(*) FROM sms_send_log WHERE app_no = :a GROUP BY status",
        a=world.app_no,
    )
    return {SendStatus(int(s)).name: int(n) for s, n in rows}


async def use_number(world: Any) -> int:
    [(used,)] = await run_sql(
        world.settings, "SELECT use_number FROM sms_app_config WHERE app_no = :a", a=world.app_no
    )
    return int(used)


async def test_accepted_messages_are_sent_by_the_worker(stack: Stack, client_for: Any) -> None:
    world = await make_world(worker_settings(stack))
    phones = [f"+86138{n:08d}" for n in range(5)]
    async with client_for(world.settings) as client:
        accepted = await client.post(URL, json=body(world, phones), headers=world.auth)
        assert accepted.status_code == 202, accepted.text
        payload = accepted.json()
        assert payload["code"] == 202 and payload["data"] is None
        assert {r["status"] for r in payload["results"]} == {"QUEUED"}
        final = await wait_for(client, world, payload["requestId"], {"SUBMITTED"})
    assert final["data"] == {"total": 5, "byStatus": {"SUBMITTED": 5}}
    assert {r["attempts"] for r in final["results"]} == {1}
    assert all(r["providerMessageId"] for r in final["results"])
    assert await use_number(world) == 5


async def test_scheduled_messages_wait_and_can_be_cancelled(stack: Stack, client_for: Any) -> None:
    world = await make_world(worker_settings(stack))
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    async with client_for(world.settings) as client:
        accepted = await client.post(
            URL, json=body(world, ["+8613800138000", "+8613900139000"], sendAt=later),
            headers=world.auth,
        )  # fmt: skip
        assert accepted.status_code == 202
        request_id = accepted.json()["requestId"]
        await asyncio.sleep(0.3)  # several worker rounds: nothing is due
        status = await client.get(f"{URL}/{request_id}", headers=world.auth)
        assert status.json()["data"]["byStatus"] == {"QUEUED": 2}
        assert status.json()["results"][0]["nextAttemptAt"].endswith("Z")
        assert await use_number(world) == 2
        cancelled = await client.delete(f"{URL}/{request_id}", headers=world.auth)
        assert cancelled.json()["data"] == {"cancelled": 2, "refunded": 2}
        again = await client.delete(f"{URL}/{request_id}", headers=world.auth)
        assert again.json()["data"]["cancelled"] == 0
    assert await statuses(world) == {"CANCELLED": 2}
    assert await use_number(world) == 0


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"sendAt": "2026-12-01T09:00:00"}, "sendAt"),
        ({"sendAt": "tomorrow"}, "sendAt"),
        ({"sendAt": "2099-01-01T00:00:00Z"}, "90 days"),
    ],
)
async def test_bad_send_times_are_400(
    stack: Stack, client_for: Any, extra: dict[str, Any], fragment: str
) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world, **extra), headers=world.auth)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["msg"]
    assert await statuses(world) == {}


async def test_up_to_ten_thousand_phones_per_request(own_stack: Stack, client_for: Any) -> None:
    world = await make_world(own_stack.settings(), quota=20_000)
    phones = [f"+86138{n:08d}" for n in range(10_001)]
    async with client_for(world.settings) as client:
        too_many = await client.post(URL, json=body(world, phones), headers=world.auth)
        assert too_many.status_code == 400 and "10000" in too_many.json()["msg"]
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        accepted = await client.post(
            URL, json=body(world, phones[:10_000], sendAt=later), headers=world.auth
        )
    assert accepted.status_code == 202
    assert await statuses(world) == {"QUEUED": 10_000}
    assert await use_number(world) == 10_000


async def test_unknown_request_is_404_and_other_apps_see_nothing(
    own_stack: Stack, client_for: Any
) -> None:
    world = await make_world(own_stack.settings())  # its queued message is left unsent
    other = await make_world(world.settings)
    async with client_for(world.settings) as client:
        accepted = await client.post(URL, json=body(world), headers=world.auth)
        request_id = accepted.json()["requestId"]
        assert (await client.get(f"{URL}/{request_id}", headers=other.auth)).status_code == 404
        assert (await client.delete(f"{URL}/{request_id}", headers=other.auth)).status_code == 404
        assert (await client.get(f"{URL}/nope", headers=world.auth)).status_code == 404


async def test_retryable_errors_retry_then_fail_and_refund(stack: Stack, client_for: Any) -> None:
    world = await make_world(
        worker_settings(stack, worker_max_attempts=3), channel_ext={"error_kind": "retryable"}
    )
    async with client_for(world.settings) as client:
        accepted = await client.post(URL, json=body(world), headers=world.auth)
        final = await wait_for(client, world, accepted.json()["requestId"], {"FAILED"})
    [result] = final["results"]
    assert result["attempts"] == 3
    assert result["code"] == "LOOPBACK_RETRYABLE"
    assert await use_number(world) == 0


async def test_ambiguous_outcome_is_unknown_and_never_resent(
    own_stack: Stack, client_for: Any
) -> None:
    # The reaper (short lease) and the reconciler (every 0.1 s, from the first moment) both
    # get many rounds at the record: neither may send it again. A Loopback channel cannot be
    # asked what became of a message, so it stays UNKNOWN until the report window (a day).
    settings = worker_settings(
        own_stack,
        worker_lease_seconds=0.5,
        reconcile_interval_seconds=0.1,
        reconcile_query_after_seconds=0,
    )
    world = await make_world(settings, channel_ext={"error_kind": "ambiguous"})
    async with client_for(world.settings) as client:
        accepted = await client.post(URL, json=body(world), headers=world.auth)
        request_id = accepted.json()["requestId"]
        final = await wait_for(client, world, request_id, {"UNKNOWN"})
        # Past the lease even with claimed_at cut to whole seconds, several reaper rounds.
        await asyncio.sleep(2.5)
        again = await client.get(f"{URL}/{request_id}", headers=world.auth)
    assert final["results"][0]["attempts"] == 1
    assert again.json()["data"]["byStatus"] == {"UNKNOWN": 1}
    assert again.json()["results"][0]["attempts"] == 1
    [(provider_calls,)] = await run_sql(
        world.settings, "SELECT COUNT(*) FROM sms_send_attempt WHERE request_id = :r", r=request_id
    )
    assert provider_calls == 1
    assert await use_number(world) == 1  # may have been sent: billed


async def test_one_apps_backlog_does_not_hold_back_another(
    own_stack: Stack, client_for: Any
) -> None:
    # Its own database: most of the backlog is still QUEUED when the test ends.
    settings = worker_settings(own_stack, worker_batch_size=40)
    big = await make_world(settings, quota=5000, channel_ext={"latency_ms": 30})
    small = await make_world(settings, channel_ext={"latency_ms": 30})
    async with client_for(settings) as client:
        backlog = await client.post(
            URL, json=body(big, [f"+86138{n:08d}" for n in range(3000)]), headers=big.auth
        )
        assert backlog.status_code == 202
        urgent = await client.post(URL, json=body(small, ["+8613900139000"]), headers=small.auth)
        await wait_for(client, small, urgent.json()["requestId"], {"SUBMITTED"})
    # The small app's message went out while most of the big backlog was still waiting.
    assert (await statuses(big)).get("QUEUED", 0) > 1500


async def test_lost_claims_are_requeued_or_left_unknown(own_stack: Stack) -> None:
    from smsgate.db.session import create_engine
    from smsgate.pipeline import repository as queue

    # Its own database: the reaper works on every record there, and the requeued record
    # would be due for the next worker.
    world = await make_world(own_stack.settings())
    old = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
    for phone, dispatched in (("+8613800138001", None), ("+8613800138002", old)):
        await run_sql(
            world.settings,
            "INSERT INTO sms_send_log (request_id, app_no, business_no, template_no, provider_no,"
            " status, fee, phone_number, message, code, content, attempts, claimed_by,"
            " claimed_at, dispatched_at, created_at, updated_at) VALUES ('r-lost', :a, :b, 'T',"
            " 'p', 1, 1, :ph, '', '', 'x', 1, 'w-dead:1', :old, :d, :old, :old)",
            a=world.app_no,
            b=world.business_no,
            ph=phone,
            old=old,
            d=dispatched,
        )
    engine = create_engine(world.settings)
    try:
        async with engine.begin() as conn:
            assert await queue.reap_lost_claims(conn, timedelta(seconds=60)) == (1, 1)
    finally:
        await engine.dispose()
    rows = dict(
        await run_sql(
            world.settings,
            "SELECT phone_number, status FROM sms_send_log WHERE request_id = 'r-lost'",
        )
    )
    assert rows == {"+8613800138001": SendStatus.QUEUED, "+8613800138002": SendStatus.UNKNOWN}


async def test_idempotency_key_on_the_queued_api(own_stack: Stack, client_for: Any) -> None:
    world = await make_world(own_stack.settings())  # its queued message is left unsent
    headers = {**world.auth, "Idempotency-Key": "campaign-7"}
    async with client_for(world.settings) as client:
        first = await client.post(URL, json=body(world), headers=headers)
        again = await client.post(URL, json=body(world), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["requestId"] == first.json()["requestId"]
    assert await statuses(world) == {"QUEUED": 1}
