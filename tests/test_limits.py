"""The moving-window limiter, in-process and in Redis, through one interface."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from conftest import REDIS_URL, _redis_host_port, require_service
from smsgate.limits.base import RateLimiter
from smsgate.limits.memory import MemoryRateLimiter
from smsgate.limits.redis import RedisRateLimiter


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    require_service("Redis", *_redis_host_port())
    redis = Redis.from_url(REDIS_URL)
    prefix = f"smsgate-test:{secrets.token_hex(4)}:"
    try:
        yield RedisRateLimiter(redis, prefix)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_allows_up_to_the_limit_then_refuses(limiter: RateLimiter) -> None:
    first = await limiter.acquire("app", 3, 5, 60_000)
    second = await limiter.acquire("app", 2, 5, 60_000)
    refused = await limiter.acquire("app", 1, 5, 60_000)
    assert first.allowed and second.allowed
    assert not refused.allowed
    assert 59_000 <= refused.retry_after_ms <= 60_000
    assert (await limiter.acquire("other-app", 5, 5, 60_000)).allowed


async def test_cost_larger_than_limit_is_refused(limiter: RateLimiter) -> None:
    decision = await limiter.acquire("app", 6, 5, 60_000)
    assert not decision.allowed
    assert (await limiter.acquire("app", 5, 5, 60_000)).allowed


async def test_release_gives_the_units_back(limiter: RateLimiter) -> None:
    taken = await limiter.acquire("app", 4, 5, 60_000)
    assert taken.reservation is not None
    assert not (await limiter.acquire("app", 2, 5, 60_000)).allowed
    await limiter.release("app", taken.reservation)
    await limiter.release("app", taken.reservation)  # twice is harmless
    assert (await limiter.acquire("app", 5, 5, 60_000)).allowed
    assert not (await limiter.acquire("app", 1, 5, 60_000)).allowed


async def test_window_moves(limiter: RateLimiter) -> None:
    window = 1000  # ms; the refused acquire below must land inside it
    assert (await limiter.acquire("app", 2, 2, window)).allowed
    await asyncio.sleep(0.1)
    refused = await limiter.acquire("app", 1, 2, window)
    assert not refused.allowed
    # The wait is what is left of the window (at least 0.1 s of it has gone), not all of it.
    assert 0 < refused.retry_after_ms <= window - 90
    # And it is enough: after it, the units are back.
    await asyncio.sleep(refused.retry_after_ms / 1000 + 0.05)
    assert (await limiter.acquire("app", 2, 2, window)).allowed


async def test_concurrent_acquires_never_exceed_the_limit(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(*(limiter.acquire("app", 1, 7, 60_000) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 7
