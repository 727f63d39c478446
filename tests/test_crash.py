"""Crash safety with real processes: a worker killed with SIGKILL mid-run loses nothing and
sends nothing twice (issue: 2 API processes, 2 workers, 5,000 queued messages)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from conftest import (
    Stack,
    free_port,
    make_world,
    run_sql,
)
from servers import SMSGATE, running_server

pytestmark = pytest.mark.slow

MESSAGES = 5000
PER_REQUEST = 10


class MockProvider:
    """A Loopback-protocol provider that remembers every (request id, phone) it was sent."""

    def __init__(self) -> None:
        self.received: Counter[tuple[str, str]] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        await asyncio.sleep(0.05)  # a provider's latency: calls overlap with the kill
        for phone in payload["phones"]:
            self.received[(payload["outId"], phone)] += 1
        statuses = [
            {"fee": 1, "message": "OK", "code": "OK", "phone": phone, "biz_id": f"b-{phone}"}
            for phone in payload["phones"]
        ]
        return web.json_response({"sms_send_status": statuses, "request_id": "mock"})


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [SMSGATE, "worker", "--no-migrate", "--concurrency", "4"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def counts(world: Any) -> dict[int, int]:
    rows = await run_sql(
        world.settings,
        "SELECT status, COUNT(*) FROM sms_send_log WHERE app_no = :a GROUP BY status",
        a=world.app_no,
    )
    return {int(status): int(n) for status, n in rows}


async def test_sigkilled_worker_loses_nothing_and_sends_nothing_twice(
    own_database: Stack, tmp_path: Path
) -> None:
    mariadb_stack = own_database
    provider = MockProvider()
    mock = web.Application()
    mock.router.add_post("/send", provider.handle)
    runner = web.AppRunner(mock)
    await runner.setup()
    mock_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", mock_port).start()

    world = await make_world(
        mariadb_stack.settings(), quota=MESSAGES, endpoint=f"http://127.0.0.1:{mock_port}/send"
    )
    env = mariadb_stack.env(
        SMSGATE_REDIS_KEY_PREFIX=world.settings.redis_key_prefix,
        SMSGATE_WORKER_LEASE_SECONDS="3",
        SMSGATE_WORKER_POLL_SECONDS="0.1",
        SMSGATE_WORKER_BATCH_SIZE="40",
    )
    api_ports = [free_port(), free_port()]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with (
            running_server(api_ports[0], env, "--no-migrate", "--no-worker"),
            running_server(api_ports[1], env, "--no-migrate", "--no-worker"),
        ):
            workers = [start_worker(env, tmp_path / f"worker{i}.log") for i in range(2)]
            async with httpx.AsyncClient(timeout=30) as client:
                limit = asyncio.Semaphore(16)

                async def enqueue(n: int) -> int:
                    phones = [f"+86138{n * PER_REQUEST + i:08d}" for i in range(PER_REQUEST)]
                    async with limit:
                        response = await client.post(
                            f"http://127.0.0.1:{api_ports[n % 2]}/api/v1/messages",
                            json={"businessNo": world.business_no, "phones": phones,
                                  "params": ["1"]},
                            headers=world.auth,
                        )  # fmt: skip
                    return response.status_code

                accepted = await asyncio.gather(
                    *(enqueue(n) for n in range(MESSAGES // PER_REQUEST))
                )
            assert set(accepted) == {202}

            # Kill one worker in the middle of the run, then start a new one.
            deadline = time.monotonic() + 60
            while (await counts(world)).get(2, 0) < MESSAGES // 5:
                assert time.monotonic() < deadline, await counts(world)
                await asyncio.sleep(0.05)
            os.killpg(workers[0].pid, signal.SIGKILL)
            workers[0].wait()
            killed_at = await counts(world)
            assert killed_at.get(0, 0) > 0, "the run ended before the kill: nothing proven"
            workers[0] = start_worker(env, tmp_path / "worker0-restarted.log")

            deadline = time.monotonic() + 120
            while True:
                current = await counts(world)
                if not current.get(0) and not current.get(1):  # no QUEUED, no SENDING
                    break
                assert time.monotonic() < deadline, current
                await asyncio.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
        await runner.cleanup()

    rows = await run_sql(
        world.settings,
        "SELECT request_id, phone_number, status FROM sms_send_log WHERE app_no = :a",
        a=world.app_no,
    )
    assert len(rows) == MESSAGES  # every message has exactly one record ...
    final = Counter(int(status) for _, _, status in rows)
    assert set(final) <= {2, 7}, final  # ... in one final state: SUBMITTED, or UNKNOWN
    # The provider got each message at most once; every SUBMITTED one exactly once.
    assert max(provider.received.values()) == 1
    for request_id, phone, status in rows:
        if int(status) == 2:
            assert provider.received[(request_id, phone)] == 1
    assert final[2] + final[7] == MESSAGES
    print(f"after the kill: {killed_at}; final: {dict(final)}")
