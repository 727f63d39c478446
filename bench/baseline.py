"""The bare forwarder baseline: FastAPI + one pooled aiohttp session, no checks, no database."""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import orjson
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

MOCK_URL = os.environ.get("BENCH_MOCK_URL", "http://127.0.0.1:9000/send")

# One pooled session for the process, as the gateway has (created in the lifespan because
# aiohttp wants a running loop).
session: aiohttp.ClientSession | None = None


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    global session
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    try:
        yield
    finally:
        await session.close()


app = FastAPI(lifespan=lifespan)


@app.post("/api/v1/send-message")
async def send_message(request: Request) -> Response:
    body = orjson.loads(await request.body())
    params = [str(value) for value in body.get("params") or []]
    forwarded = orjson.dumps(
        {
            "phones": body["phones"],
            "signName": "bench",
            "templateId": "BENCH",
            "params": params,
            "content": "Your code is " + (params[0] if params else ""),
            "outId": str(uuid.uuid4()),
        }
    )
    assert session is not None
    async with session.post(
        MOCK_URL, data=forwarded, headers={"Content-Type": "application/json"}
    ) as answer:
        text = await answer.text()
    payload = {"requestId": str(uuid.uuid4()), "code": 200, "msg": text, "data": 200}
    return Response(orjson.dumps(payload), media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same server options as `smsgate serve`.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
