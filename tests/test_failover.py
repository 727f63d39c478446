"""Failover along a business's fallback chain, per-attempt records, and circuit breakers."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from conftest import Stack, World, free_port, make_world, run_sql
from servers import running_server
from smsgate.config import Settings
from smsgate.crypto import SecretBox
from smsgate.db.models import (
    BusinessFallback,
    ProviderConfig,
    SendStatus,
    SignConfig,
    TemplateConfig,
)
from smsgate.db.session import create_engine, create_sessionmaker
from smsgate.limits.breaker import (
    CircuitBreaker,
    MemoryCircuitBreaker,
    RedisCircuitBreaker,
    Verdict,
)
from test_admin_api import add_user, login
from test_console import logged_in

URL = "/api/v1/send-message"
PHONE = "+8613800138000"


async def add_channel(
    settings: Settings,
    *,
    channel_ext: dict[str, Any] | None = None,
    template_content: str = "Code ${code} (backup)",
    channel_no: str = "Loopback",
    endpoint: str = "",
    access_key_id: str = "",
    access_key_secret: str = "",
) -> tuple[str, str]:
    """Another channel (Loopback unless told), signature and template:
    (provider_no, template_no)."""
    suffix = secrets.token_hex(4).upper()
    provider_no, template_no = f"fb-{suffix}", f"TF-{suffix}"
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            session.add(
                ProviderConfig(
                    channel_no=channel_no,
                    provider_name="backup",
                    provider_no=provider_no,
                    endpoint=endpoint,
                    access_key_id=access_key_id,
                    # Sealed as the admin API stores it: sends must decrypt it.
                    access_key_secret=SecretBox(key).seal(access_key_secret)
                    if access_key_secret
                    else "",
                    ext_json=json.dumps(channel_ext or {}),
                )
            )
            session.add(SignConfig(sign_name="backup", provider_no=provider_no))
            session.add(
                TemplateConfig(
                    sign_name="backup",
                    provider_no=provider_no,
                    template_no=template_no,
                    template_content=template_content,
                    third_party_template_no="TPL_B",
                )
            )
    finally:
        await engine.dispose()
    return provider_no, template_no


async def set_fallbacks(world: World, template_nos: list[str]) -> None:
    engine = create_engine(world.settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            for position, template_no in enumerate(template_nos, start=1):
                session.add(
                    BusinessFallback(
                        business_no=world.business_no, position=position, template_no=template_no
                    )
                )
    finally:
        await engine.dispose()


async def record_of(world: World, request_id: str) -> Any:
    [row] = await run_sql(
        world.settings,
        "SELECT status, provider_no, template_no, content, code, fee FROM sms_send_log "
        "WHERE request_id = :r",
        r=request_id,
    )
    return row


async def attempts_of(world: World, request_id: str) -> list[Any]:
    return await run_sql(
        world.settings,
        "SELECT attempt, provider_no, template_no, status, code FROM sms_send_attempt "
        "WHERE request_id = :r ORDER BY attempt",
        r=request_id,
    )


async def use_number(world: World) -> int:
    [(used,)] = await run_sql(
        world.settings, "SELECT use_number FROM sms_app_config WHERE app_no = :a", a=world.app_no
    )
    return int(used)


async def wait_until_sent(world: World, request_id: str, seconds: float = 15) -> None:
    """Until the queue is done with the record (neither QUEUED nor SENDING)."""
    deadline = asyncio.get_running_loop().time() + seconds
    # One read per turn: between retries the record goes back to QUEUED, so two reads
    # could see SENDING and then QUEUED and stop early.
    while SendStatus((await record_of(world, request_id))[0]) in (
        SendStatus.QUEUED,
        SendStatus.SENDING,
    ):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


def send_body(world: World) -> dict[str, Any]:
    return {"businessNo": world.business_no, "phones": [PHONE], "params": ["1234"]}


@pytest.mark.parametrize(
    ("primary_ext", "first_code"),
    [
        ({"error_kind": "permanent"}, "LOOPBACK_PERMANENT"),
        ({"error_kind": "rate_limited"}, "LOOPBACK_RATE_LIMITED"),
        ({"reject_phones": [PHONE]}, "LOOPBACK_REJECTED"),  # a per-phone rejection
    ],
)
async def test_rejection_fails_over_to_the_next_channel(
    stack: Stack, client_for: Any, primary_ext: dict[str, Any], first_code: str
) -> None:
    world = await make_world(stack.settings(), channel_ext=primary_ext)
    backup, backup_template = await add_channel(world.settings)
    await set_fallbacks(world, [backup_template])
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=send_body(world), headers=world.auth)
    assert response.status_code == 200, response.text
    request_id = response.json()["requestId"]
    status, provider_no, template_no, content, _code, _fee = await record_of(world, request_id)
    assert (SendStatus(status), provider_no, template_no) == (
        SendStatus.SUBMITTED,
        backup,
        backup_template,
    )
    assert content == "Code 1234 (backup)"
    assert [tuple(a) for a in await attempts_of(world, request_id)] == [
        (1, world.provider_no, world.template_no, int(SendStatus.FAILED), first_code),
        (2, backup, backup_template, int(SendStatus.SUBMITTED), "OK"),
    ]
    assert await use_number(world) == 1


async def test_exhausted_chain_is_502_with_the_last_code_and_quota_back(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings(), channel_ext={"error_kind": "retryable"})
    backup, backup_template = await add_channel(
        world.settings, channel_ext={"error_kind": "permanent"}
    )
    await set_fallbacks(world, [backup_template])
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=send_body(world), headers=world.auth)
    assert response.status_code == 502, response.text
    assert response.json()["results"][0]["code"] == "LOOPBACK_PERMANENT"
    request_id = response.json()["requestId"]
    status, provider_no, *_ = await record_of(world, request_id)
    assert (SendStatus(status), provider_no) == (SendStatus.FAILED, backup)
    assert len(await attempts_of(world, request_id)) == 2
    assert await use_number(world) == 0


async def test_ambiguous_outcome_never_fails_over(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings(), channel_ext={"error_kind": "ambiguous"})
    _backup, backup_template = await add_channel(world.settings)
    await set_fallbacks(world, [backup_template])
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=send_body(world), headers=world.auth)
    assert response.status_code == 504, response.text
    request_id = response.json()["requestId"]
    status, provider_no, *_ = await record_of(world, request_id)
    assert (SendStatus(status), provider_no) == (SendStatus.UNKNOWN, world.provider_no)
    assert [(a[1], a[3]) for a in await attempts_of(world, request_id)] == [
        (world.provider_no, int(SendStatus.UNKNOWN))
    ]


async def test_without_fallbacks_one_attempt_is_recorded(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=send_body(world), headers=world.auth)
    assert response.status_code == 200, response.text
    attempts = await attempts_of(world, response.json()["requestId"])
    assert [tuple(a) for a in attempts] == [
        (1, world.provider_no, world.template_no, int(SendStatus.SUBMITTED), "OK")
    ]


async def business_id(world: World) -> int:
    [(row_id,)] = await run_sql(
        world.settings,
        "SELECT id FROM sms_business_config WHERE business_no = :b",
        b=world.business_no,
    )
    return int(row_id)


async def test_admin_api_edits_the_chain_with_checks_and_audit(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings(), channel_ext={"error_kind": "permanent"})
    backup, backup_template = await add_channel(world.settings)
    _other, two_params = await add_channel(world.settings, template_content="${a} ${b}")
    suffix = secrets.token_hex(3)
    await add_user(world.settings, f"fadmin-{suffix}", "admin")
    await add_user(world.settings, f"fviewer-{suffix}", "viewer")
    row_id = await business_id(world)
    url = f"/api/v1/admin/businesses/{row_id}/fallbacks"
    async with client_for(world.settings) as client:
        admin = await login(client, f"fadmin-{suffix}")
        viewer = await login(client, f"fviewer-{suffix}")
        assert (await client.get(url, headers=admin)).json()["templateNos"] == []
        refused = {
            world.template_no: "another channel",  # the business's own channel
            two_params: "takes 2 param(s)",
            "T-NOPE": "does not exist",
        }
        for template_no, fragment in refused.items():
            response = await client.put(url, json={"templateNos": [template_no]}, headers=admin)
            assert response.status_code == 400, response.text
            assert fragment in response.json()["msg"]
            assert "templateNos[0]" in response.json()["msg"]
        response = await client.put(url, json={"templateNos": [backup_template]}, headers=viewer)
        assert response.status_code == 403
        # The send before the change is cached without fallbacks: it fails.
        failed = await client.post(URL, json=send_body(world), headers=world.auth)
        assert failed.status_code == 502
        response = await client.put(url, json={"templateNos": [backup_template]}, headers=admin)
        assert response.status_code == 200, response.text
        assert (await client.get(url, headers=viewer)).json()["templateNos"] == [backup_template]
        # The change invalidated the route cache: the next send fails over at once.
        sent = await client.post(URL, json=send_body(world), headers=world.auth)
        assert sent.status_code == 200, sent.text
        [(record_id,)] = await run_sql(
            world.settings,
            "SELECT id FROM sms_send_log WHERE request_id = :r",
            r=sent.json()["requestId"],
        )
        detail = await client.get(f"/api/v1/admin/send-records/{record_id}", headers=viewer)
        audit = await client.get("/api/v1/admin/audit-log?resource=businesses", headers=admin)
    assert detail.json()["providerNo"] == backup
    assert [(a["attempt"], a["providerNo"], a["status"]) for a in detail.json()["attempts"]] == [
        (1, world.provider_no, "FAILED"),
        (2, backup, "SUBMITTED"),
    ]
    changes = [
        item["changes"]
        for item in audit.json()["items"]
        if item["resourceKey"] == world.business_no
    ]
    assert changes == [{"fallbacks": [[], [backup_template]]}]


async def test_console_business_page_edits_the_chain_and_record_shows_attempts(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings(), channel_ext={"reject_phones": [PHONE]})
    backup, backup_template = await add_channel(world.settings)
    suffix = secrets.token_hex(3)
    await add_user(world.settings, f"cfadmin-{suffix}", "admin")
    row_id = await business_id(world)
    async with client_for(world.settings) as client:
        csrf = await logged_in(client, f"cfadmin-{suffix}")
        wrong = await client.post(
            f"/admin/businesses/{row_id}/fallbacks",
            data={"csrf": csrf, "template_nos": world.template_no},
        )
        assert wrong.status_code == 400
        assert "another channel" in wrong.text
        saved = await client.post(
            f"/admin/businesses/{row_id}/fallbacks",
            data={"csrf": csrf, "template_nos": backup_template},
        )
        assert saved.status_code == 303, saved.text
        page = await client.get(f"/admin/businesses/{row_id}")
        assert f'value="{backup_template}"' in page.text
        sent = await client.post(URL, json=send_body(world), headers=world.auth)
        [(record_id,)] = await run_sql(
            world.settings,
            "SELECT id FROM sms_send_log WHERE request_id = :r",
            r=sent.json()["requestId"],
        )
        record = await client.get(f"/admin/records/{record_id}")
    assert 'id="record-attempts"' in record.text
    assert "LOOPBACK_REJECTED" in record.text and backup in record.text


async def test_worker_retries_the_same_channel_then_fails_over(
    stack: Stack, client_for: Any
) -> None:
    settings = stack.settings(
        run_worker=True,
        worker_poll_seconds=0.05,
        worker_retry_base_seconds=0.02,
        worker_max_attempts=3,
    )
    world = await make_world(settings, channel_ext={"error_kind": "retryable"})
    backup, backup_template = await add_channel(settings)
    await set_fallbacks(world, [backup_template])
    async with client_for(settings) as client:
        response = await client.post("/api/v1/messages", json=send_body(world), headers=world.auth)
        assert response.status_code == 202, response.text
        request_id = response.json()["requestId"]
        await wait_until_sent(world, request_id)
    status, provider_no, *_ = await record_of(world, request_id)
    assert (SendStatus(status), provider_no) == (SendStatus.SUBMITTED, backup)
    assert [(a[0], a[1]) for a in await attempts_of(world, request_id)] == [
        (1, world.provider_no),
        (2, world.provider_no),
        (3, world.provider_no),
        (4, backup),
    ]


# -- circuit breaker -------------------------------------------------------------------------


async def test_breaker_opens_after_n_failures_and_the_channel_is_skipped(
    stack: Stack, client_for: Any
) -> None:
    settings = stack.settings(breaker_failure_threshold=2, breaker_cooldown_seconds=60)
    world = await make_world(settings, channel_ext={"error_kind": "retryable"})
    backup, backup_template = await add_channel(settings)
    await set_fallbacks(world, [backup_template])
    async with client_for(settings) as client:
        ids = []
        for _ in range(3):
            response = await client.post(URL, json=send_body(world), headers=world.auth)
            assert response.status_code == 200, response.text
            ids.append(response.json()["requestId"])
    tried = [[a[1] for a in await attempts_of(world, request_id)] for request_id in ids]
    assert tried == [[world.provider_no, backup], [world.provider_no, backup], [backup]]


async def test_every_channel_open_fails_fast_with_quota_back(stack: Stack, client_for: Any) -> None:
    settings = stack.settings(breaker_failure_threshold=1, breaker_cooldown_seconds=60)
    world = await make_world(settings, channel_ext={"error_kind": "rate_limited"})
    async with client_for(settings) as client:
        first = await client.post(URL, json=send_body(world), headers=world.auth)
        second = await client.post(URL, json=send_body(world), headers=world.auth)
    assert first.json()["results"][0]["code"] == "LOOPBACK_RATE_LIMITED"
    assert second.status_code == 502, second.text
    assert second.json()["msg"].startswith("CIRCUIT_OPEN")
    assert second.json()["results"][0]["code"] == "CIRCUIT_OPEN"
    request_id = second.json()["requestId"]
    assert SendStatus((await record_of(world, request_id))[0]) is SendStatus.FAILED
    assert await attempts_of(world, request_id) == []  # no provider was called
    assert await use_number(world) == 0


async def test_half_open_probe_success_closes_the_breaker(stack: Stack, client_for: Any) -> None:
    cooldown = 1.5
    settings = stack.settings(
        breaker_failure_threshold=1, breaker_cooldown_seconds=cooldown, config_cache_ttl_seconds=0
    )
    world = await make_world(settings, channel_ext={"error_kind": "retryable"})
    async with client_for(settings) as client:
        assert (await client.post(URL, json=send_body(world), headers=world.auth)).json()[
            "results"
        ][0]["code"] == "LOOPBACK_RETRYABLE"
        opened_by = time.monotonic()  # the breaker opened before the answer came back
        # Skipped while the channel is still broken: had the cool-down already passed, this
        # would be the probe, and it would fail.
        skipped = await client.post(URL, json=send_body(world), headers=world.auth)
        assert skipped.json()["results"][0]["code"] == "CIRCUIT_OPEN"
        await run_sql(
            settings,
            "UPDATE sms_service_provider_config SET ext_json = '{}' WHERE provider_no = :p",
            p=world.provider_no,
        )
        await asyncio.sleep(max(0.0, opened_by + cooldown + 0.2 - time.monotonic()))
        probe = await client.post(URL, json=send_body(world), headers=world.auth)
        after = await client.post(URL, json=send_body(world), headers=world.auth)
    assert (probe.status_code, after.status_code) == (200, 200)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_breaker_lets_one_probe_through_and_a_failed_probe_reopens(
    backend: str, request: pytest.FixtureRequest
) -> None:
    redis = None
    breaker: CircuitBreaker
    if backend == "redis":
        stack: Stack = request.getfixturevalue("mariadb_stack")
        assert stack.redis_url is not None
        redis = Redis.from_url(stack.redis_url)
        breaker = RedisCircuitBreaker(redis, f"smsgate-test:{secrets.token_hex(4)}:", 2, 0.2)
    else:
        breaker = MemoryCircuitBreaker(2, 0.2)
    try:
        assert await breaker.record("ch", failed=True) is False
        assert (await breaker.allow("ch")).verdict is Verdict.CLOSED
        assert await breaker.record("ch", failed=True) is True
        assert (await breaker.allow("ch")).verdict is Verdict.OPEN
        await asyncio.sleep(0.25)
        assert (await breaker.allow("ch")).verdict is Verdict.PROBE
        assert (await breaker.allow("ch")).verdict is Verdict.OPEN  # one probe at a time
        assert await breaker.record("ch", failed=True) is True  # the probe failed
        assert (await breaker.allow("ch")).verdict is Verdict.OPEN
        await asyncio.sleep(0.25)
        assert (await breaker.allow("ch")).verdict is Verdict.PROBE
        await breaker.record("ch", failed=False)
        decision = await breaker.allow("ch")
        assert (decision.verdict, decision.failures) == (Verdict.CLOSED, 0)
    finally:
        if redis is not None:
            await redis.aclose()


async def test_breaker_is_shared_by_processes_through_redis(
    mariadb_stack: Stack, client_for: Any
) -> None:
    settings = mariadb_stack.settings(breaker_failure_threshold=2, breaker_cooldown_seconds=60)
    world = await make_world(settings, channel_ext={"error_kind": "retryable"})
    env = mariadb_stack.env(
        SMSGATE_REDIS_KEY_PREFIX=settings.redis_key_prefix,
        SMSGATE_BREAKER_FAILURE_THRESHOLD="2",
        SMSGATE_BREAKER_COOLDOWN_SECONDS="60",
    )
    port = free_port()
    with running_server(port, env, "--no-migrate", "--no-worker"):
        async with httpx.AsyncClient(timeout=30) as other:
            # Two failures in the other process open the breaker for every process.
            for _ in range(2):
                response = await other.post(
                    f"http://127.0.0.1:{port}{URL}", json=send_body(world), headers=world.auth
                )
                assert response.json()["results"][0]["code"] == "LOOPBACK_RETRYABLE"
        async with client_for(settings) as client:
            here = await client.post(URL, json=send_body(world), headers=world.auth)
    assert here.status_code == 502
    assert here.json()["results"][0]["code"] == "CIRCUIT_OPEN"


async def test_a_connection_reset_after_the_request_is_unknown_and_never_failed_over(
    stack: Stack, client_for: Any
) -> None:
    from aiohttp import web

    received: list[bytes] = []

    async def reset(request: web.Request) -> web.StreamResponse:
        received.append(await request.read())  # the provider has the request...
        assert request.transport is not None
        request.transport.close()  # ...and the connection drops before any answer
        return web.Response()

    app = web.Application()
    app.router.add_post("/send", reset)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        world = await make_world(stack.settings(), endpoint=f"http://127.0.0.1:{port}/send")
        _, backup_template = await add_channel(world.settings)
        await set_fallbacks(world, [backup_template])
        async with client_for(world.settings) as client:
            sent = await client.post(URL, json=send_body(world), headers=world.auth)
    finally:
        await runner.cleanup()
    assert len(received) == 1
    [result] = sent.json()["results"]
    assert (result["status"], result["code"]) == ("UNKNOWN", "CONNECTION_LOST")
    status, provider_no, *_ = await record_of(world, sent.json()["requestId"])
    assert (SendStatus(status), provider_no) == (SendStatus.UNKNOWN, world.provider_no)
    # The backup was never called: it may have been sent already.
    assert [a[1] for a in await attempts_of(world, sent.json()["requestId"])] == [world.provider_no]
