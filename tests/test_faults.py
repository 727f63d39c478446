"""Faults with real services started by the test on their own ports (never the shared ones):
Redis stopped and restarted, MariaDB stopped and restarted, a provider that hangs or fails."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from conftest import Stack, free_port, make_world, run_sql
from servers import assert_listens
from smsgate.config import Settings
from smsgate.db.migrate import upgrade

pytestmark = pytest.mark.slow

URL = "/api/v1/send-message"


def wait_port(port: int, up: bool, seconds: float = 20) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not come {'up' if up else 'down'}")


class OwnRedis:
    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port, up=True)
        assert_listens(self.process.pid, self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
        wait_port(self.port, up=False)


class OwnMariaDB:
    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder
        self.process: subprocess.Popen[bytes] | None = None
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'data'}",
             "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.folder / 'data'}",
             "--user=root", f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={self.folder / 'sock'}", f"--pid-file={self.folder / 'pid'}",
             "--skip-log-bin", "--innodb-buffer-pool-size=32M",
             "--character-set-server=utf8mb4"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port, up=True, seconds=60)
        assert_listens(self.process.pid, self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)
            self.process = None
        wait_port(self.port, up=False)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = OwnRedis(free_port(), tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def own_mariadb(tmp_path: Path) -> Iterator[OwnMariaDB]:
    if shutil.which("mariadb-install-db") is None:
        pytest.skip("MariaDB server is not installed")
    db = OwnMariaDB(free_port(), tmp_path)
    db.start()
    try:
        yield db
    finally:
        db.stop()


def body(world: Any, phone: str = "+8613800138000") -> dict[str, Any]:
    return {"businessNo": world.business_no, "phones": [phone], "params": ["1"]}


async def count(world: Any) -> int:
    rows = await run_sql(
        world.settings, "SELECT COUNT(*) FROM sms_send_log WHERE app_no = :a", a=world.app_no
    )
    return int(rows[0][0])


async def test_redis_stopped_gives_503_then_recovers(
    mariadb_stack: Stack, own_redis: OwnRedis, client_for: Any
) -> None:
    settings = mariadb_stack.settings(redis_url=f"redis://127.0.0.1:{own_redis.port}/0")
    world = await make_world(settings, rate_limit=100)
    async with client_for(settings) as client:
        assert (await client.post(URL, json=body(world), headers=world.auth)).status_code == 200
        own_redis.stop()
        down = await client.post(URL, json=body(world, "+8613900139000"), headers=world.auth)
        assert down.status_code == 503 and "Redis" in down.json()["msg"]
        assert (await client.get("/readyz")).json()["failing"] == ["redis"]
        assert await count(world) == 1  # nothing half-written
        own_redis.start()
        back = await client.post(URL, json=body(world, "+8613900139000"), headers=world.auth)
        assert back.status_code == 200, back.text
    assert await count(world) == 2


async def test_database_stopped_gives_503_and_queued_messages_survive(
    own_mariadb: OwnMariaDB, client_for: Any
) -> None:
    url = f"mysql+asyncmy://root@127.0.0.1:{own_mariadb.port}/mysql"
    await run_sql(Settings(database_url=url), "CREATE DATABASE smsgate CHARACTER SET utf8mb4")
    url = f"mysql+asyncmy://root@127.0.0.1:{own_mariadb.port}/smsgate"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(
        database_url=url,
        secret_key="fault-test-key",
        run_worker=True,
        worker_poll_seconds=0.1,
    )
    world = await make_world(settings)
    async with client_for(settings) as client:
        # Accepted while the database is up, then the database goes away before sending.
        own_mariadb.stop()
        down = await client.post(URL, json=body(world), headers=world.auth)
        assert down.status_code == 503 and "database" in down.json()["msg"]
        own_mariadb.start()
        # Due in 1 s: accepted (committed QUEUED) now, and due while the database is down.
        later = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        accepted = await client.post(
            "/api/v1/messages", json={**body(world, "+8613900139000"), "sendAt": later},
            headers=world.auth,
        )  # fmt: skip
        assert accepted.status_code == 202
        request_id = accepted.json()["requestId"]
        assert accepted.json()["results"][0]["status"] == "QUEUED"
        own_mariadb.stop()
        await asyncio.sleep(1.5)  # due now, but every worker round fails: nothing is lost
        own_mariadb.start()
        deadline = time.monotonic() + 30
        while True:
            status = await client.get(f"/api/v1/messages/{request_id}", headers=world.auth)
            if status.status_code == 200 and status.json()["data"]["byStatus"] == {"SUBMITTED": 1}:
                break
            assert time.monotonic() < deadline, status.text
            await asyncio.sleep(0.2)


class BadProvider:
    """An HTTP endpoint speaking the Loopback protocol that hangs or answers 500."""

    def __init__(self) -> None:
        self.calls = 0

    async def hang(self, request: web.Request) -> web.Response:
        self.calls += 1
        await asyncio.sleep(30)
        return web.json_response({})

    async def error(self, request: web.Request) -> web.Response:
        self.calls += 1
        return web.json_response({"error": "boom"}, status=500)


@pytest.mark.parametrize(("path", "status", "record"), [("hang", 504, 7), ("error", 502, 5)])
async def test_provider_that_hangs_or_fails(
    stack: Stack, client_for: Any, path: str, status: int, record: int
) -> None:
    provider = BadProvider()
    app = web.Application()
    app.router.add_post("/hang", provider.hang)
    app.router.add_post("/error", provider.error)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        world = await make_world(
            stack.settings(),
            endpoint=f"http://127.0.0.1:{port}/{path}",
            channel_ext={"timeout_ms": 300},
        )
        async with client_for(world.settings) as client:
            response = await client.post(URL, json=body(world), headers=world.auth)
        assert response.status_code == status
        rows = await run_sql(
            world.settings,
            "SELECT status, fee FROM sms_send_log WHERE app_no = :a",
            a=world.app_no,
        )
        assert [int(r[0]) for r in rows] == [record]  # UNKNOWN for a hang, FAILED for 5xx
        used = await run_sql(
            world.settings,
            "SELECT use_number FROM sms_app_config WHERE app_no = :a",
            a=world.app_no,
        )
        assert used[0][0] == (1 if record == 7 else 0)  # a hang may have sent: billed
        assert provider.calls == 1
    finally:
        await runner.cleanup()
