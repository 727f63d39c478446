"""A Loopback HTTP endpoint for tests: records what it was asked to send, answers per phone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from conftest import free_port


@dataclass
class FakeProvider:
    url: str
    opted_out: set[str] = field(default_factory=set)  # answered with Twilio's 21610
    received: list[str] = field(default_factory=list)  # phones, in order
    requests: list[dict[str, Any]] = field(default_factory=list)  # the JSON bodies

    def params_for(self, phone: str) -> list[str]:
        """The params of the last request that carried this phone."""
        for request in reversed(self.requests):
            if phone in request["phones"]:
                return [str(p) for p in request["params"]]
        raise AssertionError(f"the provider never received {phone}")


@asynccontextmanager
async def fake_provider() -> AsyncIterator[FakeProvider]:
    port = free_port()
    fake = FakeProvider(f"http://127.0.0.1:{port}/send")

    async def send(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        fake.requests.append(body)
        fake.received.extend(body["phones"])
        statuses = [
            {"phone": p, "code": "21610", "message": "Attempt to send to unsubscribed recipient"}
            if p in fake.opted_out
            else {"phone": p, "code": "OK", "message": "OK", "biz_id": f"m-{p}", "fee": 1}
            for p in body["phones"]
        ]
        # Echo the text like Twilio's body does: the gateway must not pass it on.
        return web.json_response({"sms_send_status": statuses, "content": body["content"]})

    app = web.Application()
    app.router.add_post("/send", send)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake
    finally:
        await runner.cleanup()
