"""Anti-abuse limits across real server processes: one Redis, one limit."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from conftest import Stack, free_port, make_world, run_sql
from servers import running_server

pytestmark = pytest.mark.slow

PHONE = "+8613800138000"


async def test_two_processes_share_one_per_phone_limit(mariadb_stack: Stack) -> None:
    world = await make_world(mariadb_stack.settings(), channel_ext={"latency_ms": 20})
    await run_sql(
        world.settings,
        "UPDATE sms_business_config SET phone_limit_minute = 2 WHERE business_no = :b",
        b=world.business_no,
    )
    env = mariadb_stack.env(SMSGATE_REDIS_KEY_PREFIX=world.settings.redis_key_prefix)
    ports = [free_port(), free_port()]
    with (
        running_server(ports[0], env, "--no-migrate"),
        running_server(ports[1], env, "--no-migrate"),
    ):
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"http://127.0.0.1:{ports[i % 2]}/api/v1/send-message",
                        json={"businessNo": world.business_no, "phones": [PHONE], "params": ["1"]},
                        headers=world.auth,
                    )
                    for i in range(12)
                )
            )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 2, statuses
    assert statuses.count(429) == 10, statuses
    rows = await run_sql(
        world.settings,
        "SELECT COUNT(*) FROM sms_send_log WHERE app_no = :a AND status = 2",
        a=world.app_no,
    )
    assert rows[0][0] == 2
