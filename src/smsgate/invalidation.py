"""Configuration changes reach every node's caches at once (Redis pub/sub, or in-process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("smsgate.invalidation")


class ConfigBus:
    """`publish()` runs every subscriber here and, through Redis, on every other node.

    A node that loses its subscription cannot know what it missed, so it invalidates
    everything when it reconnects; caches expire within 2 s anyway.
    """

    def __init__(self, redis: Redis | None, prefix: str) -> None:
        self._redis = redis
        self._channel = f"{prefix}config-changed"
        self._subscribers: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._node = uuid.uuid4().hex
        self._ready = asyncio.Event()

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._subscribers.append(callback)

    def _notify(self) -> None:
        for callback in self._subscribers:
            callback()

    async def publish(self) -> None:
        self._notify()
        if self._redis is not None:
            try:
                await self._redis.publish(self._channel, self._node)
            except RedisError:
                log.warning("could not announce a configuration change through Redis")

    async def start(self) -> None:
        if self._redis is None:
            self._ready.set()
            return
        self._task = asyncio.create_task(self._listen(), name="smsgate-config-bus")
        # Wait (briefly) for the subscription so a change right after startup is not missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=2)

    async def _listen(self) -> None:
        assert self._redis is not None  # noqa: S101 - start() checked it
        delay = 0.5
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._notify()
                    self._ready.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._notify()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                log.warning("configuration bus lost Redis; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
