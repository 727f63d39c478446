"""Quota when a fallback template needs more (or fewer) segments than the primary."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import Stack, make_world, run_sql
from smsgate.db.models import SendStatus
from test_failover import (
    PHONE,
    URL,
    add_channel,
    attempts_of,
    record_of,
    send_body,
    set_fallbacks,
    use_number,
    wait_until_sent,
)

# 80 characters after the signature: two segments (70 per segment, 67 each when longer).
LONG = "Code ${code} " + "x" * 70
REJECT = {"reject_phones": [PHONE]}


async def test_a_longer_fallback_takes_its_extra_segments_from_the_quota(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings(), quota=10, channel_ext=REJECT)
    backup, backup_template = await add_channel(world.settings, template_content=LONG)
    await set_fallbacks(world, [backup_template])
    async with client_for(world.settings) as client:
        sent = await client.post(URL, json=send_body(world), headers=world.auth)
    assert sent.status_code == 200, sent.text
    assert sent.json()["results"][0]["fee"] == 2
    status, provider_no, *_, fee = await record_of(world, sent.json()["requestId"])
    assert (SendStatus(status), provider_no, fee) == (SendStatus.SUBMITTED, backup, 2)
    assert await use_number(world) == 2


async def test_without_quota_for_the_difference_the_fallback_is_not_called(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings(), quota=1, channel_ext=REJECT)
    _, backup_template = await add_channel(world.settings, template_content=LONG)
    await set_fallbacks(world, [backup_template])
    async with client_for(world.settings) as client:
        sent = await client.post(URL, json=send_body(world), headers=world.auth)
    [result] = sent.json()["results"]
    assert (result["status"], result["code"], result["fee"]) == ("FAILED", "QUOTA_EXHAUSTED", 0)
    assert "LOOPBACK_REJECTED" in result["message"] and backup_template in result["message"]
    request_id = sent.json()["requestId"]
    assert [a[1] for a in await attempts_of(world, request_id)] == [world.provider_no]
    status, provider_no, *_ = await record_of(world, request_id)
    assert (SendStatus(status), provider_no) == (SendStatus.FAILED, world.provider_no)
    assert await use_number(world) == 0  # the primary's reservation given back too


async def test_a_shorter_fallback_gives_back_what_it_did_not_use(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings(), quota=10, template_content=LONG, channel_ext=REJECT)
    backup, backup_template = await add_channel(world.settings)
    await set_fallbacks(world, [backup_template])
    async with client_for(world.settings) as client:
        sent = await client.post(URL, json=send_body(world), headers=world.auth)
    assert sent.status_code == 200, sent.text
    status, provider_no, *_, fee = await record_of(world, sent.json()["requestId"])
    assert (SendStatus(status), provider_no, fee) == (SendStatus.SUBMITTED, backup, 1)
    assert await use_number(world) == 1


async def test_a_queued_message_failing_over_to_a_longer_template_is_billed_for_it(
    stack: Stack, client_for: Any
) -> None:
    settings = stack.settings(run_worker=True, worker_poll_seconds=0.05)
    world = await make_world(settings, quota=10, channel_ext=REJECT)
    backup, backup_template = await add_channel(settings, template_content=LONG)
    await set_fallbacks(world, [backup_template])
    async with client_for(settings) as client:
        queued = await client.post("/api/v1/messages", json=send_body(world), headers=world.auth)
        assert queued.status_code == 202, queued.text
        request_id = queued.json()["requestId"]
        assert await use_number(world) == 1  # the primary's segment, reserved on accept
        await wait_until_sent(world, request_id)
    status, provider_no, *_, fee = await record_of(world, request_id)
    assert (SendStatus(status), provider_no, fee) == (SendStatus.SUBMITTED, backup, 2)
    assert await use_number(world) == 2


async def test_a_retried_message_gives_back_what_its_fallback_added(
    stack: Stack, client_for: Any
) -> None:
    settings = stack.settings(
        run_worker=True,
        worker_poll_seconds=0.05,
        worker_retry_base_seconds=2.0,  # the first retry waits 1-3 s: time to look at it
        worker_max_attempts=2,
    )
    world = await make_world(settings, quota=10, channel_ext=REJECT)
    _, backup_template = await add_channel(
        settings, template_content=LONG, channel_ext={"error_kind": "retryable"}
    )
    await set_fallbacks(world, [backup_template])
    async with client_for(settings) as client:
        queued = await client.post("/api/v1/messages", json=send_body(world), headers=world.auth)
        assert queued.status_code == 202, queued.text
        request_id = queued.json()["requestId"]
        deadline = asyncio.get_running_loop().time() + 15
        while len(await attempts_of(world, request_id)) < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        # Waiting for its retry: it holds its one segment again, and its record says so.
        status, *_, fee = await record_of(world, request_id)
        assert (SendStatus(status), fee) == (SendStatus.QUEUED, 1)
        assert await use_number(world) == 1
        await wait_until_sent(world, request_id)
    assert SendStatus((await record_of(world, request_id))[0]) is SendStatus.FAILED
    # Two rounds (primary refused, fallback failed retryably), nothing kept.
    assert len(await attempts_of(world, request_id)) == 4
    assert await use_number(world) == 0


async def test_a_phone_the_quota_keeps_off_a_longer_fallback_goes_on_to_a_shorter_one(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings(), quota=1, channel_ext=REJECT)
    _, long_template = await add_channel(world.settings, template_content=LONG)
    short_channel, short_template = await add_channel(world.settings)
    await set_fallbacks(world, [long_template, short_template])
    async with client_for(world.settings) as client:
        sent = await client.post(URL, json=send_body(world), headers=world.auth)
    assert sent.status_code == 200, sent.text
    request_id = sent.json()["requestId"]
    status, provider_no, *_, fee = await record_of(world, request_id)
    assert (SendStatus(status), provider_no, fee) == (SendStatus.SUBMITTED, short_channel, 1)
    # The longer fallback was never called.
    assert [a[1] for a in await attempts_of(world, request_id)] == [
        world.provider_no,
        short_channel,
    ]
    assert await use_number(world) == 1


async def test_a_fallbacks_extra_quota_comes_from_the_app_that_queued_the_message(
    stack: Stack, client_for: Any
) -> None:
    settings = stack.settings(run_worker=True, worker_poll_seconds=0.05, config_cache_ttl_seconds=0)
    world = await make_world(settings, quota=10, channel_ext=REJECT)
    other = await make_world(settings, quota=10)
    _, backup_template = await add_channel(settings, template_content=LONG)
    await set_fallbacks(world, [backup_template])
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    async with client_for(settings) as client:
        queued = await client.post(
            "/api/v1/messages", json={**send_body(world), "sendAt": later}, headers=world.auth
        )
        assert queued.status_code == 202, queued.text
        request_id = queued.json()["requestId"]
        # An admin moves the business to another app before the message is due.
        await run_sql(
            settings,
            "UPDATE sms_business_config SET app_no = :o WHERE business_no = :b",
            o=other.app_no,
            b=world.business_no,
        )
        await run_sql(
            settings,
            "UPDATE sms_send_log SET next_attempt_at = :t WHERE request_id = :r",
            t=datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5),
            r=request_id,
        )
        await wait_until_sent(world, request_id)
    status, *_, fee = await record_of(world, request_id)
    assert (SendStatus(status), fee) == (SendStatus.SUBMITTED, 2)
    assert await use_number(world) == 2
    assert await use_number(other) == 0


async def test_the_extra_a_fallback_holds_is_on_its_record_before_the_outcome_is(
    stack: Stack, client_for: Any, monkeypatch: Any
) -> None:
    from smsgate.records import repository as records_repo

    async def database_lost(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("database lost")

    world = await make_world(stack.settings(), quota=10, channel_ext=REJECT)
    _, backup_template = await add_channel(world.settings, template_content=LONG)
    await set_fallbacks(world, [backup_template])
    monkeypatch.setattr(records_repo, "finish_records", database_lost)
    async with client_for(world.settings) as client:
        sent = await client.post(URL, json=send_body(world), headers=world.auth)
    assert sent.status_code == 200, sent.text  # the provider took it: the caller learns so
    status, *_, fee = await record_of(world, sent.json()["requestId"])
    # The outcome could not be written; what the record holds matches the quota taken.
    assert (SendStatus(status), fee) == (SendStatus.SENDING, 2)
    assert await use_number(world) == 2


async def test_a_link_skipped_for_quota_does_not_spend_its_breakers_probe(
    stack: Stack, client_for: Any
) -> None:
    settings = stack.settings(
        breaker_failure_threshold=1, breaker_cooldown_seconds=1.5, config_cache_ttl_seconds=0
    )
    world = await make_world(settings, quota=10, channel_ext=REJECT)
    backup, backup_template = await add_channel(
        settings, template_content=LONG, channel_ext={"error_kind": "retryable"}
    )
    await set_fallbacks(world, [backup_template])

    async def quota(available: int) -> None:
        await run_sql(
            settings,
            "UPDATE sms_app_config SET available_number = :n WHERE app_no = :a",
            n=available,
            a=world.app_no,
        )

    async with client_for(settings) as client:
        opened = await client.post(URL, json=send_body(world), headers=world.auth)
        assert opened.json()["results"][0]["code"] != "CIRCUIT_OPEN"  # the backup failed
        await asyncio.sleep(1.7)  # cool-down over: the next call to the backup is a probe
        await quota(1)  # the primary's segment only
        short = await client.post(URL, json=send_body(world), headers=world.auth)
        assert short.json()["results"][0]["code"] == "QUOTA_EXHAUSTED"
        await quota(10)
        await run_sql(
            settings,
            "UPDATE sms_service_provider_config SET ext_json = '{}' WHERE provider_no = :p",
            p=backup,
        )
        probe = await client.post(URL, json=send_body(world), headers=world.auth)
    # The probe was still there for this request: it went through and closed the breaker.
    assert probe.status_code == 200, probe.text
    [result] = probe.json()["results"]
    assert (result["status"], result["fee"]) == ("SUBMITTED", 2)
