"""Redis moving-window limiter: one EVALSHA per request, shared by every gateway process."""

from __future__ import annotations

import uuid
from importlib import resources

from redis.asyncio import Redis

from smsgate.limits.base import RateDecision


def _lua(name: str) -> str:
    return resources.files("smsgate.limits").joinpath("lua", name).read_text(encoding="utf-8")


class RedisRateLimiter:
    """Moving window kept in Redis (acquire.lua / release.lua).

    Hand-written Lua rather than the `limits` library: `limits` has no way to give a hit
    back (needed when the quota check after it fails), uses each client's clock, and stores
    one list entry per message.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._acquire = redis.register_script(_lua("acquire.lua"))
        self._release = redis.register_script(_lua("release.lua"))

    def _keys(self, key: str) -> list[str]:
        # The hash tag keeps both keys in one slot on Redis Cluster.
        base = f"{self._prefix}rate:{{{key}}}"
        return [f"{base}:log", f"{base}:sum"]

    async def acquire(self, key: str, cost: int, limit: int, window_ms: int) -> RateDecision:
        reservation = uuid.uuid4().hex
        allowed, retry_after = await self._acquire(
            keys=self._keys(key), args=[window_ms, limit, cost, reservation]
        )
        if allowed:
            return RateDecision(True, reservation=f"{reservation}:{cost}")
        return RateDecision(False, retry_after_ms=int(retry_after))

    async def release(self, key: str, reservation: str) -> None:
        await self._release(keys=self._keys(key), args=[reservation])

    async def close(self) -> None:
        """The Redis client belongs to the app; nothing of our own to close."""


class RedisFailureCounter:
    """INCR with an expiry set by the first failure: one window per lock-out period."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}fail:{key}"

    async def failures(self, key: str) -> int:
        value = await self._redis.get(self._key(key))
        return int(value or 0)

    async def add_failure(self, key: str, window_ms: int) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(self._key(key))
            pipe.pexpire(self._key(key), window_ms, nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._key(key))
