"""What every simulator shares: configuration, forced outcomes, request recording, control API.

Control endpoints (every simulator):
- `GET /_sim/requests`: what it received, oldest first (method, path, query, headers, body,
  plus `auth_ok` and the provider code it answered with).
- `DELETE /_sim/requests`: forget them.
- `POST /_sim/outcomes` with `{"outcome": "<name>", "times": 1}`: the next `times` send calls
  (after authentication) end with that outcome.

Outcomes: `permanent`, `rate_limited`, `quota`, `retryable`, `timeout` (the answer is held
back for `hang_seconds`, so the client's timeout fires after the request was accepted).
Magic phone numbers pick an outcome for one phone: a number ending in 9001 permanent,
9002 rate_limited, 9003 quota, 9004 retryable, 9005 timeout. Where the provider reports per
phone (Tencent, Huawei, Twilio) only that phone fails; elsewhere the whole request fails.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

OUTCOMES = ("permanent", "rate_limited", "quota", "retryable", "timeout")
MAGIC_SUFFIXES = {
    "9001": "permanent",
    "9002": "rate_limited",
    "9003": "quota",
    "9004": "retryable",
    "9005": "timeout",
}


@dataclass
class SimulatorConfig:
    access_key_id: str = "sim-access-key-id"
    access_key_secret: str = "sim-access-key-secret"  # noqa: S105 - a public sandbox value
    latency_ms: int = 0
    failure_rate: float = 0.0  # share of send calls answered with the provider's system error
    hang_seconds: float = 30.0  # how long a `timeout` outcome holds the answer back
    max_skew_seconds: int | None = None  # None: the provider's own limit
    seed: int | None = None


@dataclass
class SimulatorState:
    config: SimulatorConfig
    requests: list[dict[str, Any]] = field(default_factory=list)
    forced: deque[str] = field(default_factory=deque)
    seen_nonces: set[str] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)  # accepted messages, for queries
    rng: random.Random = field(default_factory=random.Random)
    sequence: int = 0

    def next_outcome(self) -> str | None:
        """The outcome of the current send call as a whole, or None for a normal answer."""
        if self.forced:
            return self.forced.popleft()
        # Not security relevant: simulated failure share of a test server.
        if self.config.failure_rate > 0 and self.rng.random() < self.config.failure_rate:
            return "retryable"
        return None

    def next_id(self) -> int:
        self.sequence += 1
        return self.sequence

    def now(self) -> float:
        return time.time()


STATE: web.AppKey[SimulatorState] = web.AppKey("sim_state", SimulatorState)
# The record of the request being handled: middleware and handler run in the same task.
_CURRENT_RECORD: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("sim_record")


def phone_outcome(phone: str) -> str | None:
    return MAGIC_SUFFIXES.get(phone[-4:])


def first_phone_outcome(phones: Sequence[str]) -> str | None:
    for phone in phones:
        outcome = phone_outcome(phone)
        if outcome is not None:
            return outcome
    return None


def record(request: web.Request) -> dict[str, Any]:
    """The recorded entry of `request` (handlers add what they verified and answered)."""
    return _CURRENT_RECORD.get()


async def hang(state: SimulatorState) -> None:
    await asyncio.sleep(state.config.hang_seconds)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _recording_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_sim/"):
        return await handler(request)
    state = request.app[STATE]
    body = await request.read()
    entry: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "headers": dict(request.headers),
        "body": body.decode("utf-8", errors="replace"),
        "auth_ok": None,
        "answer_code": None,
    }
    _CURRENT_RECORD.set(entry)
    state.requests.append(entry)
    if state.config.latency_ms:
        await asyncio.sleep(state.config.latency_ms / 1000)
    return await handler(request)


async def _list_requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].requests)


async def _clear_requests(request: web.Request) -> web.Response:
    request.app[STATE].requests.clear()
    return web.json_response({"cleared": True})


async def _force_outcome(request: web.Request) -> web.Response:
    payload = await request.json()
    outcome = payload.get("outcome")
    if outcome not in OUTCOMES:
        return web.json_response({"error": f"outcome must be one of {OUTCOMES}"}, status=400)
    times = int(payload.get("times", 1))
    request.app[STATE].forced.extend([outcome] * times)
    return web.json_response({"queued": list(request.app[STATE].forced)})


def create_base_app(config: SimulatorConfig) -> web.Application:
    app = web.Application(middlewares=[_recording_middleware])
    state = SimulatorState(config=config)
    if config.seed is not None:
        state.rng.seed(config.seed)
    app[STATE] = state
    app.router.add_get("/_sim/requests", _list_requests)
    app.router.add_delete("/_sim/requests", _clear_requests)
    app.router.add_post("/_sim/outcomes", _force_outcome)
    return app


def json_answer(
    data: Any, status: int = 200, content_type: str = "application/json"
) -> web.Response:
    """A JSON answer with exactly the Content-Type the provider sends.

    aiohttp's json_response appends `; charset=utf-8`; Tencent's SDK only parses errors
    from an answer typed exactly `application/json`, as Tencent's servers send it.
    """
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return web.Response(body=body, status=status, headers={"Content-Type": content_type})


def constant_time_equal(expected: str, received: str) -> bool:
    """Compare as UTF-8 bytes: hmac.compare_digest refuses non-ASCII str, and what a client
    sends is arbitrary."""
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8"))
