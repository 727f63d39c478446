"""A mock SMS provider for the benchmark: answers the Loopback HTTP protocol after a delay."""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid

import orjson
import uvloop
from aiohttp import web

SEND_PATH = "/send"


def build_app(latency_ms: float) -> web.Application:
    delay = latency_ms / 1000

    async def send(request: web.Request) -> web.Response:
        payload = orjson.loads(await request.read())
        phones = payload["phones"]
        if delay:
            await asyncio.sleep(delay)
        answer = {
            "sms_send_status": [
                {
                    "fee": 1,
                    "message": "OK",
                    "code": "OK",
                    "phone": phone,
                    "biz_id": uuid.uuid4().hex,
                }
                for phone in phones
            ],
            "request_id": str(uuid.uuid4()).upper(),
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(SEND_PATH, send)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(host: str, port: int, latency_ms: float) -> None:
    # Open keep-alive connections must not hold up the benchmark's clean-up.
    runner = web.AppRunner(build_app(latency_ms), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    # A deep backlog: wrk opens every connection to the server under test at once and that
    # server opens its pool to us just as fast.
    site = web.TCPSite(runner, host, port, backlog=2048)
    await site.start()
    print(f"mock provider on http://{host}:{port}{SEND_PATH} ({latency_ms:g} ms)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.latency_ms))


if __name__ == "__main__":
    main()
