"""Fixtures: the two configurations (SQLite + in-process, MariaDB + Redis) and test worlds.

MariaDB and Redis are the real services on 127.0.0.1. When one is unreachable its tests
skip with the reason, unless SMSGATE_TEST_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from smsgate.app import create_app
from smsgate.apps.service import AppService
from smsgate.config import Settings
from smsgate.crypto import SecretBox
from smsgate.db.migrate import upgrade
from smsgate.db.models import BusinessConfig, ProviderConfig, SignConfig, TemplateConfig
from smsgate.db.session import create_engine, create_sessionmaker

MARIADB_HOST = os.environ.get("SMSGATE_TEST_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(os.environ.get("SMSGATE_TEST_MARIADB_PORT", "3306"))
MARIADB_USER = os.environ.get("SMSGATE_TEST_MARIADB_USER", "root")
REDIS_URL = os.environ.get("SMSGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_SECRET_KEY = "test-secret-key-not-for-production"
REQUIRE_SERVICES = os.environ.get("SMSGATE_TEST_REQUIRE_SERVICES") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """In CI (SMSGATE_TEST_REQUIRE_SERVICES=1) a skip of any kind is a failure: a missing
    service or SDK must never let a test pass silently."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under SMSGATE_TEST_REQUIRE_SERVICES=1: {report.longrepr}"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and SMSGATE_TEST_REQUIRE_SERVICES=1")
    pytest.skip(message)


def mariadb_url(database: str) -> str:
    return f"mysql+asyncmy://{MARIADB_USER}@{MARIADB_HOST}:{MARIADB_PORT}/{database}"


async def _admin_sql(statement: str) -> None:
    settings = Settings(database_url=mariadb_url("mysql"))
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def create_mariadb_database() -> str:
    name = f"smsgate_test_{secrets.token_hex(4)}"
    asyncio.run(
        _admin_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    )
    return name


def drop_mariadb_database(name: str) -> None:
    asyncio.run(_admin_sql(f"DROP DATABASE IF EXISTS {name}"))


_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, for a server a test starts.

    Not from the kernel's ephemeral range (what binding port 0 gives): outgoing connections
    of this or another test run take ports from there and could take it before the server
    binds it. Never the same port twice in one run."""
    low = min(_ephemeral_low(), 32768)
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(max(1024, low - 12000), low)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port found below the ephemeral range")


@dataclass
class Stack:
    """One configuration of the gateway's backing services."""

    name: str
    database_url: str
    redis_url: str | None

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "redis_key_prefix": f"smsgate-test:{secrets.token_hex(4)}:",
            "secret_key": TEST_SECRET_KEY,
        }
        values.update(overrides)
        return Settings(**values)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SMSGATE_") or k.startswith("SMSGATE_TEST")
        }
        env["SMSGATE_DATABASE_URL"] = self.database_url
        env["SMSGATE_SECRET_KEY"] = TEST_SECRET_KEY
        if self.redis_url:
            env["SMSGATE_REDIS_URL"] = self.redis_url
        env.update(extra)
        return env


@pytest.fixture
def own_database(mariadb_stack: Stack) -> Iterator[Stack]:
    """A database of this test's own: its workers claim every due message they find, so
    the shared test database's leftovers must not be in it (nor its leftovers in that)."""
    name = create_mariadb_database()
    url = mariadb_url(name)
    try:
        upgrade(url)
        yield Stack("mariadb-own", url, mariadb_stack.redis_url)
    finally:
        drop_mariadb_database(name)


@pytest.fixture
def own_stack(stack: Stack, tmp_path: Path, request: pytest.FixtureRequest) -> Stack:
    """A database of this test's own, on the same configuration as `stack`: for tests that
    leave due QUEUED records behind (every later worker of the session would drain them
    first), count what is in the whole database, or run workers that must meet nothing
    of other tests'."""
    if stack.name == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'smsgate.db'}"
        upgrade(url)
        return Stack("sqlite-own", url, None)
    own: Stack = request.getfixturevalue("own_database")
    return own


@pytest.fixture(scope="session")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    path = tmp_path_factory.mktemp("db") / "smsgate.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return Stack("sqlite", url, None)


@pytest.fixture(scope="session")
def mariadb_stack() -> Iterator[Stack]:
    require_service("MariaDB", MARIADB_HOST, MARIADB_PORT)
    redis_host, redis_port = _redis_host_port()
    require_service("Redis", redis_host, redis_port)
    name = create_mariadb_database()
    url = mariadb_url(name)
    try:
        upgrade(url)
        yield Stack("mariadb", url, REDIS_URL)
    finally:
        drop_mariadb_database(name)


def _redis_host_port() -> tuple[str, int]:
    rest = REDIS_URL.split("://", 1)[1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    return host or "127.0.0.1", int(port or 6379)


@pytest.fixture(params=["sqlite", "mariadb"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """Run the test on both configurations (SQLite + memory, MariaDB + Redis)."""
    fixture: Stack = request.getfixturevalue(f"{request.param}_stack")
    return fixture


@dataclass
class World:
    """A self-contained configuration: channel, signature, template, app, business."""

    settings: Settings
    app_no: str
    app_key: str
    business_no: str
    template_no: str
    provider_no: str
    sign_name: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.app_key}"}


async def make_world(
    settings: Settings,
    *,
    quota: int = 1000,
    rate_limit: int = 0,
    template_content: str = "Your code is ${code}",
    channel_ext: dict[str, Any] | None = None,
    endpoint: str = "",
    channel_no: str = "Loopback",
    access_key_id: str = "",
    access_key_secret: str = "",
    sdk_app_id: str | None = None,
    region: str | None = None,
) -> World:
    suffix = secrets.token_hex(4).upper()
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    provider_no = f"lb-{suffix}"
    sign_name = "smsgate"
    template_no = f"T-{suffix}"
    business_no = f"B-{suffix}"
    try:
        issued = await AppService(sessions).create_app(
            f"app {suffix}", quota=quota, rate_limit=rate_limit, app_no=f"A-{suffix}"
        )
        async with sessions.begin() as session:
            session.add(
                ProviderConfig(
                    channel_no=channel_no,
                    provider_name=channel_no,
                    provider_no=provider_no,
                    access_key_id=access_key_id,
                    # Sealed as the admin API stores it: sends must decrypt it.
                    access_key_secret=SecretBox(_secret_key(settings)).seal(access_key_secret),
                    endpoint=endpoint,
                    sdk_app_id=sdk_app_id,
                    region=region,
                    ext_json=json.dumps(channel_ext or {}),
                )
            )
            session.add(
                SignConfig(sign_name=sign_name, provider_no=provider_no, provider_name="LB")
            )
            session.add(
                TemplateConfig(
                    sign_name=sign_name,
                    provider_no=provider_no,
                    template_no=template_no,
                    template_content=template_content,
                    third_party_template_no="TPL_1",
                )
            )
            session.add(
                BusinessConfig(
                    app_no=issued.app_no,
                    business_name="registration",
                    business_no=business_no,
                    template_no=template_no,
                )
            )
    finally:
        await engine.dispose()
    return World(
        settings, issued.app_no, issued.app_key, business_no, template_no, provider_no, sign_name
    )


def _secret_key(settings: Settings) -> str | None:
    return settings.secret_key.get_secret_value() if settings.secret_key else None


async def run_sql(settings: Settings, statement: str, **params: Any) -> list[Any]:
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return list(result.fetchall()) if result.returns_rows else []
    finally:
        await engine.dispose()


# Every channel the tests create with a secret uses this one; no response may ever contain it.
PROVIDER_SECRET = "sk-TEST-provider-secret-7f3a9c1e"


async def assert_no_secret_leaks(response: httpx.Response) -> None:
    """Scans every response of every in-process client in the suite for the known secret."""
    body = await response.aread()
    assert PROVIDER_SECRET.encode() not in body, f"provider secret leaked by {response.url}"
    assert PROVIDER_SECRET not in str(response.headers)


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    """`async with client_for(settings) as client` — the app in-process, lifespan included."""

    class _Factory:
        def __init__(self, settings: Settings, client_ip: str = "127.0.0.1") -> None:
            self._settings = settings
            self._client_ip = client_ip

        async def __aenter__(self) -> httpx.AsyncClient:
            app = create_app(self._settings)
            self._lifespan = LifespanManager(app)
            await self._lifespan.__aenter__()
            transport = httpx.ASGITransport(app=self._lifespan.app, client=(self._client_ip, 50000))
            self._client = httpx.AsyncClient(
                transport=transport,
                base_url="http://gw",
                event_hooks={"response": [assert_no_secret_leaks]},
            )
            return self._client

        async def __aexit__(self, *exc: object) -> None:
            await self._client.aclose()
            await self._lifespan.__aexit__(None, None, None)

    yield _Factory


REPO_ROOT = Path(__file__).resolve().parent.parent
