"""Graceful shutdown with a real process: SIGTERM during a burst loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Stack, free_port, make_world, run_sql
from servers import SMSGATE, wait_until_up

pytestmark = pytest.mark.slow


async def by_status(world: Any) -> dict[int, int]:
    rows = await run_sql(
        world.settings,
        "SELECT status, COUNT(*) FROM sms_send_log WHERE app_no = :a GROUP BY status",
        a=world.app_no,
    )
    return {int(s): int(n) for s, n in rows}


async def in_flight(world: Any) -> tuple[int, int]:
    """(sync records written, queued records a worker has claimed), in one read."""
    [(sync, claimed)] = await run_sql(
        world.settings,
        "SELECT COALESCE(SUM(CASE WHEN phone_number LIKE '+86139%' THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN phone_number LIKE '+86138%' AND status <> 0 THEN 1 ELSE 0"
        " END), 0) FROM sms_send_log WHERE app_no = :a",
        a=world.app_no,
    )
    return int(sync), int(claimed)


async def test_sigterm_during_a_burst_loses_nothing(own_database: Stack, tmp_path: Path) -> None:
    # A database of its own: the test ends with QUEUED messages left on purpose, which any
    # later worker of the session would otherwise send first.
    stack = own_database
    world = await make_world(stack.settings(), quota=5000, channel_ext={"latency_ms": 300})
    env = stack.env(
        SMSGATE_REDIS_KEY_PREFIX=world.settings.redis_key_prefix,
        SMSGATE_WORKER_POLL_SECONDS="0.05",
        SMSGATE_WORKER_BATCH_SIZE="20",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [SMSGATE, "serve", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(port, process)
        async with httpx.AsyncClient(timeout=30) as client:
            queued = await client.post(
                f"{base}/api/v1/messages",
                json={"businessNo": world.business_no, "params": ["1"],
                      "phones": [f"+86138{n:08d}" for n in range(400)]},
                headers=world.auth,
            )  # fmt: skip
            assert queued.status_code == 202

            async def sync_send(n: int) -> int | None:
                try:
                    response = await client.post(
                        f"{base}/api/v1/send-message",
                        json={"businessNo": world.business_no, "params": ["1"],
                              "phones": [f"+86139{n:08d}"]},
                        headers=world.auth,
                    )  # fmt: skip
                except httpx.TransportError:
                    return None  # refused after the server stopped accepting: not sent
                return response.status_code

            burst = [asyncio.create_task(sync_send(n)) for n in range(40)]
            # SIGTERM once the burst has reached the server (its records are written, their
            # 300 ms provider calls under way) and the worker has batches out.
            deadline = time.monotonic() + 15
            while min(found := await in_flight(world)) == 0:
                assert time.monotonic() < deadline, found
                await asyncio.sleep(0.02)
            os.killpg(process.pid, signal.SIGTERM)
            answers = await asyncio.gather(*burst)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()

    # uvicorn re-raises SIGTERM once its graceful shutdown is done.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
    answered = [a for a in answers if a is not None]
    assert answered and set(answered) <= {200}, answers
    statuses = await by_status(world)
    # Nothing half-done: no record was left SENDING by the shutdown.
    assert statuses.get(1, 0) == 0, statuses
    # Every answered sync request's message is recorded SUBMITTED; the queued ones are
    # either sent or still QUEUED for the next worker — none lost.
    sync_rows = await run_sql(
        world.settings,
        "SELECT COUNT(*) FROM sms_send_log WHERE app_no = :a AND phone_number LIKE '+86139%'"
        " AND status = 2",
        a=world.app_no,
    )
    assert sync_rows[0][0] == len(answered)
    queue_rows = await run_sql(
        world.settings,
        "SELECT COUNT(*) FROM sms_send_log WHERE app_no = :a AND phone_number LIKE '+86138%'"
        " AND status IN (0, 2)",
        a=world.app_no,
    )
    assert queue_rows[0][0] == 400
    assert statuses.get(0, 0) > 0, "the worker finished before the SIGTERM: nothing proven"


async def test_sigterm_to_a_standalone_worker_finishes_or_releases_its_claims(
    own_database: Stack, client_for: Any, tmp_path: Path
) -> None:
    world = await make_world(own_database.settings(), quota=5000, channel_ext={"latency_ms": 300})
    async with client_for(world.settings) as client:  # no worker here: the queue only fills
        queued = await client.post(
            "/api/v1/messages",
            json={"businessNo": world.business_no, "params": ["1"],
                  "phones": [f"+86138{n:08d}" for n in range(300)]},
            headers=world.auth,
        )  # fmt: skip
        assert queued.status_code == 202, queued.text
    env = own_database.env(
        SMSGATE_REDIS_KEY_PREFIX=world.settings.redis_key_prefix,
        SMSGATE_WORKER_POLL_SECONDS="0.05",
        SMSGATE_WORKER_BATCH_SIZE="100",
    )
    with (tmp_path / "worker.log").open("w") as log:
        process = subprocess.Popen(
            [SMSGATE, "worker", "--no-migrate", "--concurrency", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            # SIGTERM while the worker holds a claimed batch with 300 ms calls under way.
            deadline = time.monotonic() + 30
            while (await by_status(world)).get(1, 0) == 0:
                assert process.poll() is None and time.monotonic() < deadline
                await asyncio.sleep(0.02)
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode in (0, -signal.SIGTERM)
    statuses = await by_status(world)
    assert statuses.get(1, 0) == 0, statuses  # nothing left SENDING
    assert set(statuses) <= {0, 2}, statuses  # sent, or back in the queue for the next one
    assert sum(statuses.values()) == 300
    assert statuses.get(0, 0) > 0, "the worker finished before the SIGTERM: nothing proven"
    assert "finishing what is in flight" in (tmp_path / "worker.log").read_text()
