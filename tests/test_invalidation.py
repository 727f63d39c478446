"""A configuration change reaches the send path at once, on this node and on every other."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from conftest import Stack, free_port, make_world, run_sql
from servers import running_server
from test_admin_api import add_user, login

pytestmark = pytest.mark.slow

ADMIN = "/api/v1/admin"
TTL = 2  # seconds the other process keeps its cached business (the most the config allows)


async def _send(client: httpx.AsyncClient, base: str, world: Any) -> int:
    response = await client.post(
        f"{base}/api/v1/send-message",
        json={"businessNo": world.business_no, "phones": ["+8613800138000"], "params": ["1"]},
        headers=world.auth,
    )
    return response.status_code


async def test_disabling_a_business_reaches_another_process(
    mariadb_stack: Stack, client_for: Any
) -> None:
    world = await make_world(mariadb_stack.settings())
    await add_user(world.settings, "invalidator", "admin")
    env = mariadb_stack.env(
        SMSGATE_REDIS_KEY_PREFIX=world.settings.redis_key_prefix,
        SMSGATE_CONFIG_CACHE_TTL_SECONDS=str(TTL),
    )
    port = free_port()
    other = f"http://127.0.0.1:{port}"
    [business_id] = [
        row[0]
        for row in await run_sql(
            world.settings,
            "SELECT id FROM sms_business_config WHERE business_no = :b",
            b=world.business_no,
        )
    ]
    with running_server(port, env, "--no-migrate"):
        async with client_for(world.settings) as local, httpx.AsyncClient(timeout=10) as remote:
            headers = await login(local, "invalidator")
            # Both nodes have the business cached now: this one first (its cold start is
            # outside the window), then the other, no earlier than `primed`, so its cached
            # copy lives until primed + TTL at the earliest.
            assert await _send(local, "", world) == 200
            primed = time.monotonic()
            assert await _send(remote, other, world) == 200
            disabled = await local.post(
                f"{ADMIN}/businesses/{business_id}/disable", headers=headers
            )
            assert disabled.status_code == 200
            # This node: at once.
            assert await _send(local, "", world) == 403
            # The other node: as soon as the pub/sub message arrives, before its cached
            # copy (TTL above) could have expired on its own.
            status = 200
            while status == 200 and time.monotonic() - primed < TTL - 0.5:
                status = await _send(remote, other, world)
                if status == 200:
                    await asyncio.sleep(0.02)
            assert status == 403, "the other process still used its cached business"
            # The 403 came back before the other node's copy could expire: it was pub/sub.
            assert time.monotonic() - primed < TTL
