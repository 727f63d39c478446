"""A small in-process TTL cache with single-flight loading (config on the send path)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Values live `ttl` seconds; concurrent misses for one key share one load.

    Failed loads are not cached. `invalidate()` drops everything (the admin API calls it
    on every change; Redis pub/sub carries it to other nodes).
    """

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._values: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, load: Callable[[K], Awaitable[V]]) -> V:
        hit = self._values.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._loading.pop(key, None)
        if self._ttl > 0:
            self._values[key] = (time.monotonic() + self._ttl, value)
        future.set_result(value)
        return value

    def invalidate(self) -> None:
        self._values.clear()
