"""Real server processes: quota and per-minute limits under concurrency, the demo, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from typing import Any

import httpx
import pytest

from conftest import Stack, free_port, make_world, run_sql
from servers import SMSGATE, running_server

pytestmark = pytest.mark.slow

URL = "/api/v1/send-message"


async def _fire(ports: list[int], world: Any, count: int, phone_base: int) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> int:
            port = ports[i % len(ports)]
            response = await client.post(
                f"http://127.0.0.1:{port}{URL}",
                json={
                    "businessNo": world.business_no,
                    "phones": [f"+86138{phone_base + i:08d}"],
                    "params": ["1"],
                },
                headers=world.auth,
            )
            return response.status_code

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _counts(world: Any) -> tuple[int, int]:
    used = await run_sql(
        world.settings, "SELECT use_number FROM sms_app_config WHERE app_no = :a", a=world.app_no
    )
    sent = await run_sql(
        world.settings, "SELECT COUNT(*) FROM sms_send_log WHERE app_no = :a", a=world.app_no
    )
    return int(used[0][0]), int(sent[0][0])


async def test_quota_is_never_oversold_under_concurrency(stack: Stack) -> None:
    world = await make_world(stack.settings(), quota=20, channel_ext={"latency_ms": 20})
    port = free_port()
    with running_server(port, stack.env(), "--no-migrate"):
        statuses = await _fire([port], world, 50, 0)
    assert statuses.count(200) == 20, statuses
    assert statuses.count(402) == 30, statuses
    assert await _counts(world) == (20, 20)


async def test_two_processes_share_one_per_minute_limit(mariadb_stack: Stack) -> None:
    world = await make_world(mariadb_stack.settings(), quota=1000, rate_limit=15)
    env = mariadb_stack.env(SMSGATE_REDIS_KEY_PREFIX=world.settings.redis_key_prefix)
    port_a, port_b = free_port(), free_port()
    with running_server(port_a, env, "--no-migrate"), running_server(port_b, env, "--no-migrate"):
        first = await _fire([port_a, port_b], world, 20, 0)
        second = await _fire([port_b, port_a], world, 10, 100)
    statuses = first + second
    assert statuses.count(200) == 15, statuses
    assert statuses.count(429) == 15, statuses
    assert await _counts(world) == (15, 15)


def test_several_workers_without_redis_are_refused(sqlite_stack: Stack) -> None:
    env = sqlite_stack.env()
    env.pop("SMSGATE_REDIS_URL", None)
    result = subprocess.run(
        [SMSGATE, "serve", "--workers", "2", "--no-migrate", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SMSGATE_REDIS_URL" in result.stderr


async def test_several_workers_with_redis_share_limits(mariadb_stack: Stack) -> None:
    world = await make_world(mariadb_stack.settings(), quota=1000, rate_limit=8)
    env = mariadb_stack.env(SMSGATE_REDIS_KEY_PREFIX=world.settings.redis_key_prefix)
    port = free_port()
    with running_server(port, env, "--no-migrate", "--workers", "2"):
        statuses = await _fire([port], world, 16, 0)
    assert statuses.count(200) == 8, statuses
    assert statuses.count(429) == 8, statuses


def test_demo_prints_a_working_curl(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    port = free_port()
    with running_server(port, env, "--demo", cwd=str(tmp_path), pipe_output=True) as server:
        assert server.stdout is not None
        banner = ""
        while "console: " not in banner:
            line = server.stdout.readline()
            assert line, f"demo exited early: {banner}"
            banner += line
        curl = next(line.strip() for line in banner.splitlines() if line.strip().startswith("curl"))
        assert "Authorization: Bearer A-DEMO." in curl
        assert '"businessNo":"B-000003"' in curl
        result = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    payload = json.loads(result.stdout)
    assert payload["code"] == 200 and payload["data"] == 200
    assert payload["results"][0]["status"] == "SUBMITTED"
    database = tmp_path / "smsgate.db"
    rows = asyncio.run(
        run_sql(
            _sqlite_settings(database),
            "SELECT status, request_id FROM sms_send_log WHERE app_no = 'A-DEMO'",
        )
    )
    assert [(r.status, r.request_id) for r in rows] == [(2, payload["requestId"])]
    # Seeding is idempotent: a second start reuses the rows and issues a new key.
    port = free_port()
    with running_server(port, env, "--demo", cwd=str(tmp_path), pipe_output=True) as server:
        assert server.stdout is not None
        text = ""
        while "console: " not in text:
            text += server.stdout.readline()
        assert re.search(r"Bearer A-DEMO\.", text)
    counts = asyncio.run(
        run_sql(_sqlite_settings(database), "SELECT COUNT(*) FROM sms_business_config")
    )
    assert counts[0][0] == 1


def _sqlite_settings(path: Any) -> Any:
    from smsgate.config import Settings

    return Settings(database_url=f"sqlite+aiosqlite:///{path}")


def test_cli_app_create_and_admin_user(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    env["SMSGATE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    created = subprocess.run(
        [SMSGATE, "app", "create", "billing", "--quota", "50", "--rate-limit", "5", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert set(issued) == {"appNo", "appKey"}
    assert issued["appKey"].startswith(issued["appNo"] + ".")
    settings = _sqlite_settings(tmp_path / "cli.db")
    [row] = asyncio.run(
        run_sql(
            settings,
            "SELECT app_name, available_number, current_limiting, app_key_hash FROM sms_app_config",
        )
    )
    assert (row.app_name, row.available_number, row.current_limiting) == ("billing", 50, 5)
    assert issued["appKey"] not in row.app_key_hash

    user = subprocess.run(
        [SMSGATE, "admin", "create-user", "ops", "--password-stdin"],
        env=env,
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert user.returncode == 0, user.stderr
    [user_row] = asyncio.run(
        run_sql(settings, "SELECT username, password_hash, role FROM sms_admin_user")
    )
    assert user_row.username == "ops" and user_row.role == "admin"
    assert user_row.password_hash.startswith("$argon2")

    short = subprocess.run(
        [SMSGATE, "admin", "create-user", "ops2", "--password-stdin"],
        env=env,
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 2
    assert "at least 8" in short.stderr


def test_serve_refuses_to_start_without_a_secret_key(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    env["SMSGATE_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'smsgate.db'}"
    result = subprocess.run(
        [SMSGATE, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "SMSGATE_SECRET_KEY is not set" in result.stderr
    assert "secrets.token_urlsafe(32)" in result.stderr  # how to make one
