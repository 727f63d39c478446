"""Schemathesis against /openapi.json: no 5xx, and answers that match the documented schema."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from conftest import TEST_SECRET_KEY, Stack, free_port, make_world
from servers import running_server
from smsgate.app import create_app
from smsgate.config import Settings
from smsgate.db.session import create_engine, create_sessionmaker
from smsgate.users.service import UserService

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "fuzzing password"


class Target:
    def __init__(self, base_url: str, app_key: str, admin_token: str) -> None:
        self.base_url = base_url
        self.app_key = app_key
        self.admin_token = admin_token


@pytest.fixture(scope="module")
def fuzz_target(sqlite_stack: Stack) -> Iterator[Target]:

    async def prepare() -> str:
        world = await make_world(sqlite_stack.settings(), quota=1_000_000)
        engine = create_engine(world.settings)
        try:
            users = UserService(create_sessionmaker(engine))
            await users.set_user("fuzzer", ADMIN_PASSWORD, "admin")
            # Logging out ends every token of a user: the logout endpoint gets a user of its
            # own, so the fuzzer's token stays good for every other endpoint.
            await users.set_user("fuzz-logout", ADMIN_PASSWORD, "admin")
        finally:
            await engine.dispose()
        return world.app_key

    app_key = asyncio.run(prepare())
    port = free_port()
    env = sqlite_stack.env(SMSGATE_SECRET_KEY=TEST_SECRET_KEY)
    with running_server(port, env, "--no-migrate"):
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(
            f"{base}/api/v1/admin/auth/token",
            json={"username": "fuzzer", "password": ADMIN_PASSWORD},
        ).json()["accessToken"]
        yield Target(base, app_key, token)


# The schema the app publishes at /openapi.json, built without starting it.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()
)


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("SMSGATE_FUZZ_EXAMPLES", "8")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_never_fails_and_matches_its_schema(case: Any, fuzz_target: Target) -> None:
    path = case.path
    if path == "/api/v1/admin/auth/logout":
        token = httpx.post(
            f"{fuzz_target.base_url}/api/v1/admin/auth/token",
            json={"username": "fuzz-logout", "password": ADMIN_PASSWORD},
        ).json()["accessToken"]
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    elif path.startswith("/api/v1/admin") and path != "/api/v1/admin/auth/token":
        case.headers = {
            **(case.headers or {}),
            "Authorization": f"Bearer {fuzz_target.admin_token}",
        }
    elif path.startswith("/api/v1/") and "/admin" not in path:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {fuzz_target.app_key}"}
    case.call_and_validate(
        base_url=fuzz_target.base_url,
        checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
    )
