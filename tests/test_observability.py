"""Metrics at /metrics and structured JSON logs with masked phones."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from conftest import PROVIDER_SECRET, Stack, free_port, make_world, run_sql
from servers import SMSGATE, wait_until_up
from smsgate.observability.logs import mask_phone, mask_phones

PHONE = "+8618232533068"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def per_process(folder: Path, name: str, **labels: str) -> dict[str, float]:
    """One counter's value per process of a multi-process metrics folder (counter_<pid>.db)."""
    values = {}
    for file in folder.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(file, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            values[file.stem] = sample(generate_latest(registry).decode(), name, **labels)
    return values


def test_mask_phone() -> None:
    assert mask_phone(PHONE) == "+86182****3068"
    assert mask_phones(f"sent to {PHONE} and +12025550123") == (
        "sent to +86182****3068 and +12025**0123"
    )
    assert mask_phone("123") == "***"


async def test_metrics_count_sends_by_route_channel_and_outcome(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings(), quota=50)
    async with client_for(world.settings) as client:
        before = (await client.get("/metrics")).text
        for _ in range(2):
            response = await client.post(
                "/api/v1/send-message",
                json={"businessNo": world.business_no, "phones": [PHONE], "params": ["1"]},
                headers=world.auth,
            )
            assert response.status_code == 200
        await client.post("/api/v1/send-message", json={}, headers=world.auth)
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    route = {"method": "POST", "route": "/api/v1/send-message"}
    assert (
        sample(text, "smsgate_http_requests_total", **route, status="200")
        - sample(before, "smsgate_http_requests_total", **route, status="200")
        == 2
    )
    assert sample(text, "smsgate_http_requests_total", **route, status="400") >= 1
    channel = world.provider_no
    assert sample(text, "smsgate_messages_total", channel=channel, outcome="accepted") == 2
    assert sample(text, "smsgate_provider_call_seconds_count", channel=channel) == 2
    assert sample(text, "smsgate_app_quota_remaining", app=world.app_no) == 48
    assert "smsgate_queue_depth" in text and "smsgate_queue_lag_seconds" in text
    assert PHONE not in text and PHONE[1:] not in text  # labels never carry phones


@pytest.mark.slow
async def test_json_logs_and_metrics_across_worker_processes(
    mariadb_stack: Stack, tmp_path: Path
) -> None:
    world = await make_world(mariadb_stack.settings(), quota=1000)
    secret_channel = world.provider_no
    await run_sql(
        world.settings,
        "UPDATE sms_service_provider_config SET access_key_secret = :s WHERE provider_no = :p",
        s=PROVIDER_SECRET,
        p=secret_channel,
    )
    metrics_dir = tmp_path / "metrics"
    env = mariadb_stack.env(
        SMSGATE_REDIS_KEY_PREFIX=world.settings.redis_key_prefix,
        SMSGATE_LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    route = {"method": "POST", "route": "/api/v1/send-message", "status": "200"}
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [SMSGATE, "serve", "--port", str(port), "--no-migrate", "--workers", "2"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            wait_until_up(port, process)
            base = f"http://127.0.0.1:{port}"
            responses: list[httpx.Response] = []
            async with httpx.AsyncClient(timeout=30) as client:
                # Until both worker processes have served sends (a new connection each time
                # lets the kernel hand it to either), so one scrape must add up two processes.
                for _ in range(20):
                    responses += await asyncio.gather(
                        *(
                            client.post(
                                f"{base}/api/v1/send-message",
                                json={
                                    "businessNo": world.business_no,
                                    "phones": [PHONE],
                                    "params": ["1"],
                                },
                                headers={**world.auth, "Connection": "close"},
                            )
                            for _ in range(12)
                        )
                    )
                    served = per_process(metrics_dir, "smsgate_http_requests_total", **route)
                    if len([n for n in served.values() if n > 0]) >= 2:
                        break
                assert len([n for n in served.values() if n > 0]) >= 2, served
                assert {r.status_code for r in responses} == {200}
                text = (await client.get(f"{base}/metrics")).text
        finally:
            process.terminate()
            process.wait(timeout=30)
    # Both processes' counts are in one scrape.
    assert sample(text, "smsgate_http_requests_total", **route) == len(responses)
    assert sample(
        text, "smsgate_messages_total", channel=secret_channel, outcome="accepted"
    ) == len(responses)

    output = log_path.read_text()
    assert PHONE not in output and PROVIDER_SECRET not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    request_id = responses[0].json()["requestId"]
    mine = [line for line in lines if line.get("requestId") == request_id]
    answered = next(line for line in mine if line["msg"].startswith("send-message answered"))
    assert answered["app"] == world.app_no and answered["business"] == world.business_no
    assert answered["outcome"] == 200 and answered["durationMs"] >= 0
    assert answered["phones"] == ["+86182****3068"]
    call = next(line for line in mine if line["msg"] == "provider call")
    assert call["channel"] == secret_channel and call["outcome"] == "accepted"
    assert all(re.match(r"\d{4}-\d\d-\d\dT", line["ts"]) for line in lines)


def test_human_format_in_a_terminal_json_otherwise(monkeypatch: Any) -> None:
    import logging

    from smsgate.observability import logs

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        logs.configure("info", "auto")
        [terminal] = root.handlers
        monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
        logs.configure("info", "auto")
        [piped] = root.handlers
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    record = logging.LogRecord(
        "smsgate.api", logging.INFO, __file__, 1, f"sent to {PHONE}", (), None
    )
    record.requestId = "r-1"
    human = terminal.format(record)
    assert not human.startswith("{") and "smsgate.api: sent to +86182****3068" in human
    assert "requestId=r-1" in human and PHONE not in human
    assert json.loads(piped.format(record))["requestId"] == "r-1"


async def test_queue_depth_and_lag_are_measured(own_stack: Stack, client_for: Any) -> None:
    world = await make_world(own_stack.settings())  # no worker: the queue only fills
    async with client_for(world.settings) as client:
        for n in range(3):
            queued = await client.post(
                "/api/v1/messages",
                json={"businessNo": world.business_no, "phones": [f"+86138001380{n:02d}"],
                      "params": ["1"]},
                headers=world.auth,
            )  # fmt: skip
            assert queued.status_code == 202, queued.text
        await asyncio.sleep(1.2)
        text = (await client.get("/metrics")).text
    assert sample(text, "smsgate_queue_depth") == 3
    assert sample(text, "smsgate_queue_lag_seconds") >= 1
