"""Verification codes: issue, verify once, burn after 5 wrong tries, limits; both stacks."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from conftest import REDIS_URL, Stack, World, _redis_host_port, make_world, require_service, run_sql
from fake_endpoint import FakeProvider, fake_provider
from smsgate.verification.store import AttemptStatus, CodeStore, MemoryCodeStore, RedisCodeStore

ISSUE = "/api/v1/verification-codes"
VERIFY = "/api/v1/verification-codes/verify"
PHONE = "+8613800138000"


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    async with fake_provider() as fake:
        yield fake


async def code_world(
    stack: Stack,
    provider: FakeProvider,
    template: str = "Your code is ${code}",
    **columns: Any,
) -> World:
    world = await make_world(stack.settings(), template_content=template, endpoint=provider.url)
    values = {"is_verification": True, **columns}
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    await run_sql(
        world.settings,
        f"UPDATE sms_business_config SET {assignments} WHERE business_no = :b",  # noqa: S608
        b=world.business_no,
        **values,
    )
    return world


def issue_body(world: World, phone: str = PHONE) -> dict[str, str]:
    return {"businessNo": world.business_no, "phone": phone}


def verify_body(world: World, code: str, phone: str = PHONE) -> dict[str, str]:
    return {"businessNo": world.business_no, "phone": phone, "code": code}


def wrong(code: str) -> str:
    return "0" * len(code) if code != "0" * len(code) else "1" * len(code)


async def test_issue_then_verify_once(
    stack: Stack, client_for: Any, provider: FakeProvider
) -> None:
    world = await code_world(stack, provider)
    async with client_for(world.settings) as client:
        issued = await client.post(ISSUE, json=issue_body(world, "13800138000"), headers=world.auth)
        [code] = provider.params_for(PHONE)
        valid = await client.post(VERIFY, json=verify_body(world, code), headers=world.auth)
        again = await client.post(VERIFY, json=verify_body(world, code), headers=world.auth)
    assert issued.status_code == 200, issued.text
    assert re.fullmatch(r"\d{6}", code)
    assert code not in issued.text
    payload = issued.json()
    assert payload["data"] == {"phone": PHONE, "expiresInSeconds": 300}
    assert valid.status_code == 200
    assert valid.json()["data"]["result"] == "valid"
    assert code not in valid.text
    assert again.json()["data"] == {"result": "invalid", "reason": "no_code", "attemptsLeft": None}
    # The send record keeps the request but not the code.
    [row] = await run_sql(
        world.settings,
        "SELECT content, params, provider_response, request_id FROM sms_send_log WHERE app_no = :a",
        a=world.app_no,
    )
    assert row.content == "Your code is ******"
    assert code not in row.params
    # The fake provider echoes the text in its answer, as Twilio does.
    assert "Your code is ******" in row.provider_response
    assert row.request_id == payload["requestId"]


async def test_wrong_tries_burn_the_code_for_good(
    stack: Stack, client_for: Any, provider: FakeProvider
) -> None:
    world = await code_world(stack, provider)
    async with client_for(world.settings) as client:
        await client.post(ISSUE, json=issue_body(world), headers=world.auth)
        [code] = provider.params_for(PHONE)
        answers = [
            (
                await client.post(VERIFY, json=verify_body(world, wrong(code)), headers=world.auth)
            ).json()["data"]
            for _ in range(5)
        ]
        burnt = [
            (await client.post(VERIFY, json=verify_body(world, code), headers=world.auth)).json()
            for _ in range(2)
        ]
    assert [a["attemptsLeft"] for a in answers] == [4, 3, 2, 1, 0]
    assert {a["reason"] for a in answers} == {"wrong_code"}
    for payload in burnt:
        assert payload["data"]["result"] == "invalid"
        assert payload["data"]["reason"] == "too_many_attempts"
        assert "burnt" in payload["msg"]


async def test_parallel_verifies_with_the_right_code_succeed_once(
    stack: Stack, client_for: Any, provider: FakeProvider
) -> None:
    world = await code_world(stack, provider)
    async with client_for(world.settings) as client:
        await client.post(ISSUE, json=issue_body(world), headers=world.auth)
        [code] = provider.params_for(PHONE)
        responses = await asyncio.gather(
            *(
                client.post(VERIFY, json=verify_body(world, code), headers=world.auth)
                for _ in range(20)
            )
        )
    results = [r.json()["data"]["result"] for r in responses]
    assert results.count("valid") == 1, results
    assert results.count("invalid") == 19, results


async def test_parallel_wrong_guesses_compare_at_most_five(
    stack: Stack, client_for: Any, provider: FakeProvider
) -> None:
    world = await code_world(stack, provider)
    async with client_for(world.settings) as client:
        await client.post(ISSUE, json=issue_body(world), headers=world.auth)
        [code] = provider.params_for(PHONE)
        guesses = await asyncio.gather(
            *(
                client.post(VERIFY, json=verify_body(world, wrong(code)), headers=world.auth)
                for _ in range(20)
            )
        )
        right = await client.post(VERIFY, json=verify_body(world, code), headers=world.auth)
    reasons = [g.json()["data"]["reason"] for g in guesses]
    assert reasons.count("wrong_code") == 5, reasons
    assert reasons.count("too_many_attempts") == 15, reasons
    assert right.json()["data"]["reason"] == "too_many_attempts"


async def test_a_new_code_replaces_the_earlier_one(
    stack: Stack, client_for: Any, provider: FakeProvider
) -> None:
    world = await code_world(stack, provider, phone_limit_minute=0)
    async with client_for(world.settings) as client:
        await client.post(ISSUE, json=issue_body(world), headers=world.auth)
        [first] = provider.params_for(PHONE)
        for _ in range(3):  # two random codes are the same one time in a million
            await client.post(ISSUE, json=issue_body(world), headers=world.auth)
            [second] = provider.params_for(PHONE)
            if second != first:
                break
        assert second != first
        old = await client.post(VERIFY, json=verify_body(world, first), headers=world.auth)
        new = await client.post(VERIFY, json=verify_body(world, second), headers=world.auth)
    assert old.json()["data"]["result"] == "invalid"
    assert new.json()["data"]["result"] == "valid"


async def test_per_phone_limit_refuses_and_keeps_the_earlier_code(
    stack: Stack, client_for: Any, provider: FakeProvider
) -> None:
    world = await code_world(stack, provider)  # verification defaults: 1 per minute
    async with client_for(world.settings) as client:
        await client.post(ISSUE, json=issue_body(world), headers=world.auth)
        [code] = provider.params_for(PHONE)
        refused = await client.post(ISSUE, json=issue_body(world), headers=world.auth)
        valid = await client.post(VERIFY, json=verify_body(world, code), headers=world.auth)
    assert refused.status_code == 429
    assert "per minute" in refused.json()["msg"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(provider.requests) == 1
    assert valid.json()["data"]["result"] == "valid"


async def test_business_settings_and_second_param(
    stack: Stack, client_for: Any, provider: FakeProvider
) -> None:
    world = await code_world(
        stack,
        provider,
        template="Code {1}, valid {2} minutes",
        code_length=8,
        code_alphabet="ABCDEFGH",
        code_ttl_seconds=90,
    )
    async with client_for(world.settings) as client:
        issued = await client.post(ISSUE, json=issue_body(world), headers=world.auth)
        code, minutes = provider.params_for(PHONE)
        valid = await client.post(VERIFY, json=verify_body(world, code), headers=world.auth)
    assert issued.json()["data"]["expiresInSeconds"] == 90
    assert re.fullmatch(r"[A-H]{8}", code)
    assert minutes == "2"
    assert valid.json()["data"]["result"] == "valid"


async def test_refusals(stack: Stack, client_for: Any, provider: FakeProvider) -> None:
    plain = await make_world(stack.settings(), endpoint=provider.url)
    bad = await code_world(stack, provider, code_length=2)
    other = await code_world(stack, provider)
    async with client_for(plain.settings) as client:
        not_verification = await client.post(ISSUE, json=issue_body(plain), headers=plain.auth)
        bad_length = await client.post(ISSUE, json=issue_body(bad), headers=bad.auth)
        no_key = await client.post(ISSUE, json=issue_body(other))
        foreign = await client.post(VERIFY, json=verify_body(other, "123456"), headers=plain.auth)
        bad_phone = await client.post(ISSUE, json=issue_body(other, "12"), headers=other.auth)
        empty = await client.post(ISSUE, content=b"", headers=other.auth)
        nothing = await client.post(VERIFY, json=verify_body(other, "123456"), headers=other.auth)
    assert not_verification.status_code == 403
    assert "is_verification" in not_verification.json()["msg"]
    assert bad_length.status_code == 403 and "code_length" in bad_length.json()["msg"]
    assert no_key.status_code == 401
    assert foreign.status_code == 403
    assert bad_phone.status_code == 400
    assert empty.status_code == 400
    assert nothing.json()["data"]["reason"] == "no_code"
    assert provider.requests == []


async def test_per_address_limits(stack: Stack, client_for: Any, provider: FakeProvider) -> None:
    world = await code_world(stack, provider)
    settings = world.settings.model_copy(
        update={
            "verification_issue_per_ip_per_minute": 1,
            "verification_verify_per_ip_per_minute": 3,
        }
    )
    async with client_for(settings) as client:
        issues = [
            await client.post(ISSUE, json=issue_body(world, p), headers=world.auth)
            for p in (PHONE, "+8613900139000")
        ]
        verifies = [
            await client.post(VERIFY, json=verify_body(world, "000000"), headers=world.auth)
            for _ in range(4)
        ]
    assert [r.status_code for r in issues] == [200, 429]
    assert "verification-code issue requests per minute" in issues[1].json()["msg"]
    assert [r.status_code for r in verifies] == [200, 200, 200, 429]
    assert int(verifies[3].headers["Retry-After"]) >= 1
    assert len(provider.requests) == 1


# -- the stores ------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CodeStore]:
    if request.param == "memory":
        yield MemoryCodeStore()
        return
    require_service("Redis", *_redis_host_port())
    redis = Redis.from_url(REDIS_URL)
    prefix = f"smsgate-test:{secrets.token_hex(4)}:"
    try:
        yield RedisCodeStore(redis, prefix)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_store_expires_and_counts(store: CodeStore) -> None:
    assert (await store.begin_attempt("B:1", 5)).status is AttemptStatus.NO_CODE
    ttl = 1.0  # seconds; the four calls below must come within it
    stored = time.monotonic()
    await store.put("B:1", "h1", "s1", int(ttl * 1000))
    counted = await store.begin_attempt("B:1", 2)
    assert (counted.status, counted.code_hash, counted.salt, counted.tries) == (
        AttemptStatus.COUNTED,
        "h1",
        "s1",
        1,
    )
    assert (await store.begin_attempt("B:1", 2)).tries == 2
    assert (await store.begin_attempt("B:1", 2)).status is AttemptStatus.NO_TRIES_LEFT
    assert not await store.consume("B:1", "other")
    await asyncio.sleep(stored + ttl + 0.05 - time.monotonic())
    assert (await store.begin_attempt("B:1", 2)).status is AttemptStatus.EXPIRED
    await store.put("B:1", "h2", "s2", 60_000)  # a new code starts afresh
    assert (await store.begin_attempt("B:1", 2)).status is AttemptStatus.COUNTED
    assert await store.consume("B:1", "h2")
    assert not await store.consume("B:1", "h2")
    assert (await store.begin_attempt("B:1", 2)).status is AttemptStatus.NO_CODE


async def test_a_code_past_its_ttl_is_expired_at_the_endpoint(
    stack: Stack, client_for: Any, provider: FakeProvider, monkeypatch: Any
) -> None:
    from smsgate.verification import service

    # Businesses may not set less than 30 s; this test should not wait that long.
    monkeypatch.setattr(service, "TTL_RANGE", (1, service.TTL_RANGE[1]))
    world = await code_world(stack, provider, code_ttl_seconds=1)
    async with client_for(world.settings) as client:
        issued = await client.post(ISSUE, json=issue_body(world), headers=world.auth)
        assert issued.status_code == 200, issued.text
        [code] = provider.params_for(PHONE)
        await asyncio.sleep(1.5)
        late = await client.post(VERIFY, json=verify_body(world, code), headers=world.auth)
        again = await client.post(VERIFY, json=verify_body(world, code), headers=world.auth)
    assert late.status_code == 200, late.text
    assert late.json()["data"]["result"] == "expired"
    assert again.json()["data"]["result"] != "valid"
