"""Per-phone limits per business: the limiter on both backends and the send path on both stacks."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from conftest import REDIS_URL, Stack, World, _redis_host_port, make_world, require_service, run_sql
from smsgate.db.models import SendStatus
from smsgate.limits.phones import (
    MemoryPhoneLimiter,
    PhoneLimiter,
    PhoneWindow,
    RedisPhoneLimiter,
    business_phone_windows,
)

URL = "/api/v1/send-message"
PHONE = "+8613800138000"
OTHER = "+8613900139000"
MINUTE = PhoneWindow("minute", 60_000, 1)
HOUR = PhoneWindow("hour", 3_600_000, 2)


@pytest.fixture(params=["memory", "redis"])
async def phone_limiter(request: pytest.FixtureRequest) -> AsyncIterator[PhoneLimiter]:
    if request.param == "memory":
        yield MemoryPhoneLimiter()
        return
    require_service("Redis", *_redis_host_port())
    redis = Redis.from_url(REDIS_URL)
    prefix = f"smsgate-test:{secrets.token_hex(4)}:"
    try:
        yield RedisPhoneLimiter(redis, prefix)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def test_business_windows_defaults() -> None:
    assert [(w.name, w.limit) for w in business_phone_windows(True, None, None, None)] == [
        ("minute", 1),
        ("hour", 5),
        ("day", 10),
    ]
    assert business_phone_windows(False, None, None, None) == ()
    assert [(w.name, w.limit) for w in business_phone_windows(True, 0, 3, None)] == [
        ("hour", 3),
        ("day", 10),
    ]
    assert [(w.name, w.limit) for w in business_phone_windows(False, None, None, 2)] == [("day", 2)]


async def test_each_phone_is_limited_on_its_own(phone_limiter: PhoneLimiter) -> None:
    first = await phone_limiter.acquire_phones("B", [PHONE, OTHER], [MINUTE], "r1")
    assert [d.allowed for d in first] == [True, True]
    second = await phone_limiter.acquire_phones("B", [PHONE], [MINUTE], "r2")
    assert not second[0].allowed
    assert second[0].window == MINUTE
    assert 59_000 <= second[0].retry_after_ms <= 60_000
    # Another business counts separately.
    assert (await phone_limiter.acquire_phones("C", [PHONE], [MINUTE], "r3"))[0].allowed


async def test_a_phone_is_taken_only_when_every_window_allows(
    phone_limiter: PhoneLimiter,
) -> None:
    minute = PhoneWindow("minute", 1000, 1)  # r2 below must land inside its 1 s
    windows = [minute, HOUR]
    assert (await phone_limiter.acquire_phones("B", [PHONE], windows, "r1"))[0].allowed
    refused = await phone_limiter.acquire_phones("B", [PHONE], windows, "r2")
    assert not refused[0].allowed and refused[0].window == minute
    assert 0 < refused[0].retry_after_ms <= minute.window_ms
    await asyncio.sleep(refused[0].retry_after_ms / 1000 + 0.05)
    assert (await phone_limiter.acquire_phones("B", [PHONE], windows, "r3"))[0].allowed
    await asyncio.sleep(minute.window_ms / 1000 + 0.05)
    over_hour = await phone_limiter.acquire_phones("B", [PHONE], windows, "r4")
    assert not over_hour[0].allowed and over_hour[0].window == HOUR
    # The refused attempts took nothing: still exactly two in the hour.
    await phone_limiter.release_phones("B", [PHONE], "r3")
    assert (await phone_limiter.acquire_phones("B", [PHONE], windows, "r5"))[0].allowed


async def test_release_gives_the_phone_back(phone_limiter: PhoneLimiter) -> None:
    assert (await phone_limiter.acquire_phones("B", [PHONE, OTHER], [MINUTE], "r1"))[0].allowed
    await phone_limiter.release_phones("B", [PHONE], "r1")
    again = await phone_limiter.acquire_phones("B", [PHONE, OTHER], [MINUTE], "r2")
    assert [d.allowed for d in again] == [True, False]


async def test_concurrent_acquires_take_one(phone_limiter: PhoneLimiter) -> None:
    decisions = await asyncio.gather(
        *(phone_limiter.acquire_phones("B", [PHONE], [MINUTE], f"r{i}") for i in range(30))
    )
    assert sum(d[0].allowed for d in decisions) == 1


# -- the send path ---------------------------------------------------------------------------


async def limit_business(world: World, **columns: Any) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    await run_sql(
        world.settings,
        f"UPDATE sms_business_config SET {assignments} WHERE business_no = :b",  # noqa: S608
        b=world.business_no,
        **columns,
    )


async def send_rows(world: World) -> list[Any]:
    return await run_sql(
        world.settings,
        "SELECT phone_number, status, code, message, fee, content FROM sms_send_log"
        " WHERE app_no = :a ORDER BY id",
        a=world.app_no,
    )


async def use_number(world: World) -> int:
    rows = await run_sql(
        world.settings, "SELECT use_number FROM sms_app_config WHERE app_no = :a", a=world.app_no
    )
    return int(rows[0][0])


def send_body(world: World, phones: list[str]) -> dict[str, Any]:
    return {"businessNo": world.business_no, "phones": phones, "params": ["123456"]}


async def test_verification_business_defaults_to_one_per_minute(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings())
    await limit_business(world, is_verification=True)
    async with client_for(world.settings) as client:
        first = await client.post(URL, json=send_body(world, [PHONE]), headers=world.auth)
        second = await client.post(URL, json=send_body(world, [PHONE]), headers=world.auth)
    assert first.status_code == 200, first.text
    assert second.status_code == 429
    payload = second.json()
    assert payload["code"] == 429 and payload["data"] is None
    assert "1 message(s) per minute" in payload["msg"]
    assert 1 <= int(second.headers["Retry-After"]) <= 60
    [result] = payload["results"]
    assert (result["phone"], result["status"], result["code"], result["fee"]) == (
        PHONE,
        "FAILED",
        "PHONE_RATE_LIMITED",
        0,
    )
    assert "phone_limit_minute" in result["message"]
    rows = await send_rows(world)
    assert [(r.status, r.code, r.fee) for r in rows] == [
        (SendStatus.SUBMITTED, "OK", 1),
        (SendStatus.FAILED, "PHONE_RATE_LIMITED", 0),
    ]
    assert rows[1].content == "Your code is 123456"
    assert await use_number(world) == 1


async def test_plain_business_has_no_per_phone_limit(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        statuses = [
            (await client.post(URL, json=send_body(world, [PHONE]), headers=world.auth)).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 200]


async def test_configured_hour_limit_names_the_hour(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    await limit_business(world, phone_limit_hour=2)
    async with client_for(world.settings) as client:
        responses = [
            await client.post(URL, json=send_body(world, [PHONE]), headers=world.auth)
            for _ in range(3)
        ]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert "2 message(s) per hour" in responses[2].json()["msg"]
    assert "phone_limit_hour" in responses[2].json()["results"][0]["message"]


async def test_limited_phone_among_others_is_207_and_not_billed(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings())
    await limit_business(world, is_verification=True)
    async with client_for(world.settings) as client:
        await client.post(URL, json=send_body(world, [PHONE]), headers=world.auth)
        mixed = await client.post(URL, json=send_body(world, [OTHER, PHONE]), headers=world.auth)
    assert mixed.status_code == 207, mixed.text
    results = {r["phone"]: r for r in mixed.json()["results"]}
    assert [r["phone"] for r in mixed.json()["results"]] == [OTHER, PHONE]
    assert (results[OTHER]["status"], results[OTHER]["code"]) == ("SUBMITTED", "OK")
    assert (results[PHONE]["status"], results[PHONE]["code"]) == ("FAILED", "PHONE_RATE_LIMITED")
    rows = [r for r in await send_rows(world) if r.status == SendStatus.FAILED]
    assert [(r.phone_number, r.code) for r in rows] == [(PHONE, "PHONE_RATE_LIMITED")]
    assert await use_number(world) == 2


async def test_refused_request_gives_the_phone_back(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings(), quota=0)
    await limit_business(world, is_verification=True)
    async with client_for(world.settings) as client:
        refused = await client.post(URL, json=send_body(world, [PHONE]), headers=world.auth)
        await run_sql(
            world.settings,
            "UPDATE sms_app_config SET available_number = 5 WHERE app_no = :a",
            a=world.app_no,
        )
        sent = await client.post(URL, json=send_body(world, [PHONE]), headers=world.auth)
    assert refused.status_code == 402
    assert sent.status_code == 200, sent.text


async def test_parallel_sends_to_one_phone_send_exactly_one(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings(), channel_ext={"latency_ms": 20})
    await limit_business(world, phone_limit_minute=1)
    async with client_for(world.settings) as client:
        responses = await asyncio.gather(
            *(
                client.post(URL, json=send_body(world, [PHONE]), headers=world.auth)
                for _ in range(20)
            )
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    assert statuses.count(429) == 19, statuses
    rows = await send_rows(world)
    assert sum(r.status == SendStatus.SUBMITTED for r in rows) == 1
    assert sum(r.code == "PHONE_RATE_LIMITED" for r in rows) == 19
    assert await use_number(world) == 1
    assert len({uuid.UUID(r.json()["requestId"]) for r in responses}) == 20
