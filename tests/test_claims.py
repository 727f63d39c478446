"""A worker writes only what its claim still holds: a claim the reaper took back is neither
sent nor written by the worker that held it before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import Stack, make_world, run_sql
from smsgate.db.base import utcnow
from smsgate.db.models import SendStatus
from smsgate.db.session import create_engine
from smsgate.pipeline import repository as queue

# A lease that has always run out: every claim is stale for the reaper.
EXPIRED = timedelta(seconds=-30)


async def queued_message(stack: Stack, client_for: Any) -> Any:
    world = await make_world(stack.settings())  # no worker runs: the test claims itself
    async with client_for(world.settings) as client:
        accepted = await client.post(
            "/api/v1/messages",
            json={"businessNo": world.business_no, "phones": ["+8613800138000"], "params": ["1"]},
            headers=world.auth,
        )
    assert accepted.status_code == 202, accepted.text
    return world


async def record(world: Any) -> tuple[Any, ...]:
    [row] = await run_sql(
        world.settings,
        "SELECT status, claimed_by, dispatched_at IS NOT NULL FROM sms_send_log WHERE app_no = :a",
        a=world.app_no,
    )
    return tuple(row)


async def test_a_claim_taken_back_before_dispatch_is_not_sent_by_its_old_worker(
    own_stack: Stack, client_for: Any
) -> None:
    world = await queued_message(own_stack, client_for)
    engine = create_engine(world.settings)
    try:
        async with engine.begin() as conn:
            [late] = await queue.claim_due(conn, "late-worker", 10, False)
        async with engine.begin() as conn:  # it waited past the lease
            assert await queue.reap_lost_claims(conn, EXPIRED) == (1, 0)
        async with engine.begin() as conn:
            [other] = await queue.claim_due(conn, "other-worker", 10, False)
        assert other.id == late.id
        async with engine.begin() as conn:
            assert await queue.mark_dispatched(conn, [late.id], "late-worker") == []
            # Nor can the old worker put it back in the queue (a graceful stop releasing it).
            await queue.requeue(conn, [late.id], "late-worker", utcnow(), "QUEUED", "x", True)
        assert await record(world) == (int(SendStatus.SENDING), "other-worker", 0)
        async with engine.begin() as conn:
            assert await queue.mark_dispatched(conn, [other.id], "other-worker") == [other.id]
    finally:
        await engine.dispose()
    assert await record(world) == (int(SendStatus.SENDING), "other-worker", 1)


async def test_an_answer_arriving_after_the_reaper_gave_up_is_still_recorded(
    own_stack: Stack, client_for: Any
) -> None:
    world = await queued_message(own_stack, client_for)
    engine = create_engine(world.settings)
    try:
        async with engine.begin() as conn:
            [claimed] = await queue.claim_due(conn, "slow-worker", 10, False)
            assert await queue.mark_dispatched(conn, [claimed.id], "slow-worker") == [claimed.id]
        async with engine.begin() as conn:  # the provider call outlasts the lease
            assert await queue.reap_lost_claims(conn, EXPIRED) == (0, 1)
        assert (await record(world))[0] == int(SendStatus.UNKNOWN)
        async with engine.begin() as conn:
            assert await queue.hold_claimed(conn, [claimed.id], "slow-worker") == {claimed.id}
        assert (await record(world))[:2] == (int(SendStatus.SENDING), "slow-worker")
        # Once reconciliation (or a report) has settled it, the old claim has no say.
        async with engine.begin() as conn:
            await queue.reap_lost_claims(conn, EXPIRED)
            assert await queue.settle_unknown(conn, claimed.id, SendStatus.DELIVERED, "OK", "x")
        async with engine.begin() as conn:
            assert await queue.hold_claimed(conn, [claimed.id], "slow-worker") == set()
    finally:
        await engine.dispose()
    assert (await record(world))[0] == int(SendStatus.DELIVERED)


async def test_send_api_records_left_sending_become_unknown(own_stack: Stack) -> None:
    from datetime import UTC, datetime

    world = await make_world(own_stack.settings())
    now = datetime.now(UTC).replace(tzinfo=None)
    for phone, age in (("+8613800138001", timedelta(minutes=20)), ("+8613800138002", None)):
        at = now - age if age else now
        await run_sql(
            world.settings,
            "INSERT INTO sms_send_log (request_id, app_no, business_no, template_no, provider_no,"
            " status, fee, phone_number, message, code, content, created_at, updated_at)"
            " VALUES ('r-sync', :a, :b, 'T', 'p', 1, 1, :ph, '', '', 'x', :t, :t)",
            a=world.app_no,
            b=world.business_no,
            ph=phone,
            t=at,
        )
    engine = create_engine(world.settings)
    try:
        async with engine.begin() as conn:
            assert await queue.reap_lost_claims(conn, timedelta(seconds=60)) == (0, 1)
    finally:
        await engine.dispose()
    rows = {
        phone: (status, code)
        for phone, status, code in await run_sql(
            world.settings,
            "SELECT phone_number, status, code FROM sms_send_log WHERE request_id = 'r-sync'",
        )
    }
    # The process that was sending the old one is gone: it may have been sent.
    assert rows == {
        "+8613800138001": (int(SendStatus.UNKNOWN), "SEND_LOST"),
        "+8613800138002": (int(SendStatus.SENDING), ""),  # still being sent
    }
