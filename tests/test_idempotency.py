"""Idempotency-Key on the send API: one send per key, the same answer every time."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from conftest import Stack, free_port, make_world, run_sql
from servers import running_server

URL = "/api/v1/send-message"


def body(world: Any, phone: str = "+8613800138000") -> dict[str, Any]:
    return {"businessNo": world.business_no, "phones": [phone], "params": ["1234"]}


async def count_records(world: Any) -> int:
    rows = await run_sql(
        world.settings, "SELECT COUNT(*) FROM sms_send_log WHERE app_no = :a", a=world.app_no
    )
    return int(rows[0][0])


async def test_repeat_returns_the_first_answer(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    headers = {**world.auth, "Idempotency-Key": "order-42-code"}
    async with client_for(world.settings) as client:
        first = await client.post(URL, json=body(world), headers=headers)
        again = await client.post(URL, json=body(world), headers=headers)
        other_key = await client.post(
            URL, json=body(world), headers={**world.auth, "Idempotency-Key": "order-43-code"}
        )
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other_key.json()["requestId"] != first.json()["requestId"]
    assert await count_records(world) == 2


async def test_same_key_other_body_is_409(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    headers = {**world.auth, "Idempotency-Key": "k1"}
    async with client_for(world.settings) as client:
        assert (await client.post(URL, json=body(world), headers=headers)).status_code == 200
        other = await client.post(URL, json=body(world, "+8613900139000"), headers=headers)
    assert other.status_code == 409
    assert "another request body" in other.json()["msg"]
    assert await count_records(world) == 1


async def test_parallel_repeats_send_once(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings(), channel_ext={"latency_ms": 300})
    headers = {**world.auth, "Idempotency-Key": "burst"}
    async with client_for(world.settings) as client:
        responses = await asyncio.gather(
            *(client.post(URL, json=body(world), headers=headers) for _ in range(10))
        )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["requestId"] for r in responses}) == 1
    assert await count_records(world) == 1


async def test_a_refused_request_frees_its_key(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings(), quota=0)
    headers = {**world.auth, "Idempotency-Key": "retry-after-topup"}
    async with client_for(world.settings) as client:
        refused = await client.post(URL, json=body(world), headers=headers)
        assert refused.status_code == 402
        await run_sql(
            world.settings,
            "UPDATE sms_app_config SET available_number = 5 WHERE app_no = :a",
            a=world.app_no,
        )
        sent = await client.post(URL, json=body(world), headers=headers)
    assert sent.status_code == 200
    assert await count_records(world) == 1


@pytest.mark.parametrize("key", ["", "x" * 129, "tab\there"])
async def test_bad_keys_are_400(stack: Stack, client_for: Any, key: str) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        response = await client.post(
            URL, json=body(world), headers={**world.auth, "Idempotency-Key": key}
        )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["msg"]
    assert await count_records(world) == 0


@pytest.mark.slow
async def test_repeats_across_processes_send_once(mariadb_stack: Stack) -> None:
    world = await make_world(mariadb_stack.settings(), channel_ext={"latency_ms": 300})
    env = mariadb_stack.env(SMSGATE_REDIS_KEY_PREFIX=world.settings.redis_key_prefix)
    ports = [free_port(), free_port()]
    headers = {**world.auth, "Idempotency-Key": "two-nodes"}
    with (
        running_server(ports[0], env, "--no-migrate"),
        running_server(ports[1], env, "--no-migrate"),
    ):
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"http://127.0.0.1:{ports[i % 2]}{URL}", json=body(world), headers=headers
                    )
                    for i in range(8)
                )
            )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["requestId"] for r in responses}) == 1
    assert await count_records(world) == 1
