"""/healthz and /readyz."""

from __future__ import annotations

from typing import Any

from conftest import Stack, free_port


async def test_health_and_ready(stack: Stack, client_for: Any) -> None:
    async with client_for(stack.settings()) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if stack.redis_url else {})
    assert ready.json()["checks"] == expected


async def test_ready_names_the_failing_part(mariadb_stack: Stack, client_for: Any) -> None:
    settings = mariadb_stack.settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with client_for(settings) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["redis"]

    settings = mariadb_stack.settings(
        database_url=f"mysql+asyncmy://root@127.0.0.1:{free_port()}/x", redis_url=None
    )
    async with client_for(settings) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["database"]


async def test_unknown_route_keeps_the_envelope(stack: Stack, client_for: Any) -> None:
    async with client_for(stack.settings()) as client:
        response = await client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["code"] == 404
