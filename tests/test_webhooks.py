"""App webhooks: signed POSTs of final statuses, retries, dead letters and replay, secrets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from conftest import TEST_SECRET_KEY, Stack, make_world, run_sql
from smsgate.auth.service import Principal
from smsgate.config import Settings
from smsgate.crypto import SecretBox
from smsgate.db.models import SendStatus
from smsgate.db.session import create_engine, create_sessionmaker
from smsgate.invalidation import ConfigBus
from smsgate.management import schemas
from smsgate.management.resources import APPS
from smsgate.management.service import ConfigService
from smsgate.records.repository import RecordOutcome, finish_records
from smsgate.webhooks.dispatcher import WebhookDispatcher, retry_delay
from smsgate.webhooks.signing import signature, verify
from test_admin_api import ADMIN, add_user, login
from test_console import logged_in

PHONE = "+8613800138000"
OTHER_PHONE = "+8613800138001"
ADMIN_USER = Principal("webhook-test", "admin")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A real HTTP endpoint on 127.0.0.1 standing in for an app's webhook handler."""

    status: int = 200
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(dict(request.headers), await request.read()))
        return web.Response(status=self.status, text="ok" if self.status < 300 else "broken")

    async def wait_for(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} POSTs arrived"
            await asyncio.sleep(0.05)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield found
    finally:
        await runner.cleanup()


def signed_correctly(secret: str, received: Received, tolerance: int = 300) -> bool:
    """The receiver's check, written independently of smsgate.webhooks.signing."""
    timestamp = received.headers["X-Smsgate-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256)
    return hmac.compare_digest(f"v1={mac.hexdigest()}", received.headers["X-Smsgate-Signature"])


def config_service(settings: Settings, engine: Any) -> ConfigService:
    return ConfigService(
        create_sessionmaker(engine), SecretBox(TEST_SECRET_KEY), ConfigBus(None, "wh-test:")
    )


async def app_row_id(settings: Settings, app_no: str) -> int:
    [(row_id,)] = await run_sql(
        settings, "SELECT id FROM sms_app_config WHERE app_no = :a", a=app_no
    )
    return int(row_id)


async def set_callback(settings: Settings, app_no: str, url: str) -> str:
    """Give the app a callback URL through ConfigService; returns its signing secret."""
    engine = create_engine(settings)
    try:
        config = config_service(settings, engine)
        row_id = await app_row_id(settings, app_no)
        await config.update(ADMIN_USER, APPS, row_id, schemas.AppUpdate(callback_url=url))
        shown = await config.webhook_secret(ADMIN_USER, row_id)
    finally:
        await engine.dispose()
    return shown.webhook_secret


async def deliveries(settings: Settings, record_id: int) -> list[Any]:
    return await run_sql(
        settings,
        "SELECT id, status, attempts, last_error FROM sms_webhook_delivery WHERE record_id = :r",
        r=record_id,
    )


async def pending_flag(settings: Settings, record_id: int) -> bool:
    [(flag,)] = await run_sql(
        settings, "SELECT webhook_pending FROM sms_send_log WHERE id = :i", i=record_id
    )
    return bool(flag)


async def insert_record(
    settings: Settings,
    app_no: str,
    *,
    status: SendStatus,
    phone: str = PHONE,
    request_id: str | None = None,
    provider_no: str = "p",
    message_id: str | None = None,
) -> tuple[str, int]:
    request_id = request_id or str(uuid.uuid4())
    await run_sql(
        settings,
        "INSERT INTO sms_send_log (request_id, app_no, business_no, template_no, provider_no,"
        " status, fee, phone_number, message, code, content, provider_message_id, created_at,"
        " updated_at) VALUES (:r, :a, 'B-1', 'T', :p, :st, 1, :ph, '', '', 'hi', :m,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        r=request_id,
        a=app_no,
        p=provider_no,
        st=int(status),
        ph=phone,
        m=message_id,
    )
    [(record_id,)] = await run_sql(
        settings,
        "SELECT id FROM sms_send_log WHERE request_id = :r AND phone_number = :ph",
        r=request_id,
        ph=phone,
    )
    return request_id, int(record_id)


async def run_dispatcher(settings: Settings, rounds: int = 1, **schedule: Any) -> int:
    """A dispatcher of its own (as a worker process would run), `rounds` passes."""
    engine = create_engine(settings)
    done = 0
    try:
        async with aiohttp.ClientSession() as http:
            dispatcher = WebhookDispatcher(engine, SecretBox(TEST_SECRET_KEY), http, **schedule)
            for _ in range(rounds):
                done += await dispatcher.run_once()
    finally:
        await engine.dispose()
    return done


# -- units ------------------------------------------------------------------------------


def test_signature_verifies_and_refuses_tampering_and_old_timestamps() -> None:
    body = b'{"recordId":1}'
    now = int(time.time())
    header = signature("whsec_x", now, body)
    assert header.startswith("v1=") and len(header) == 3 + 64
    assert verify("whsec_x", str(now), body, header)
    assert not verify("whsec_x", str(now), body + b" ", header)
    assert not verify("whsec_other", str(now), body, header)
    assert not verify("whsec_x", str(now - 301), body, signature("whsec_x", now - 301, body))
    assert verify("whsec_x", str(now), body, f"v1=00, {header}")  # during a rotation


def test_retry_delay_doubles_from_the_base_up_to_the_cap() -> None:
    base, cap = timedelta(seconds=10), timedelta(hours=1)
    delays = [retry_delay(n, base, cap, lambda: 1.0) for n in range(1, 12)]
    assert [d.total_seconds() for d in delays[:4]] == [10, 20, 40, 80]
    assert delays[-1] == cap and max(delays) == cap
    assert retry_delay(3, base, cap, lambda: 0.5) == timedelta(seconds=20)


# -- the three writers flag final records -----------------------------------------------


async def test_failed_sync_send_posts_one_signed_event(
    stack: Stack, client_for: Any, receiver: Receiver
) -> None:
    world = await make_world(stack.settings(), channel_ext={"reject_phones": [PHONE]})
    secret = await set_callback(world.settings, world.app_no, receiver.url)
    async with client_for(world.settings) as client:
        sent = await client.post(
            "/api/v1/send-message",
            headers=world.auth,
            json={"businessNo": world.business_no, "phones": [PHONE], "params": ["1234"]},
        )
        assert sent.status_code == 502, sent.text
        await receiver.wait_for(1)
    [post] = receiver.requests
    assert signed_correctly(secret, post)
    assert post.headers["Content-Type"] == "application/json"
    event = post.event
    [(record_id,)] = await run_sql(
        world.settings,
        "SELECT id FROM sms_send_log WHERE request_id = :r",
        r=sent.json()["requestId"],
    )
    assert event["recordId"] == record_id
    assert event["requestId"] == sent.json()["requestId"]
    assert event["appNo"] == world.app_no and event["businessNo"] == world.business_no
    assert event["phone"] == PHONE and event["status"] == "FAILED"
    assert event["code"] == "LOOPBACK_REJECTED" and event["fee"] == 0
    assert event["occurredAt"].endswith("Z") and event["deliveredAt"] is None
    [delivery] = await deliveries(world.settings, record_id)
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert not await pending_flag(world.settings, record_id)

    # Flagged again by mistake (or a second writer): the outbox holds one event per record.
    await run_sql(
        world.settings, "UPDATE sms_send_log SET webhook_pending = 1 WHERE id = :i", i=record_id
    )
    await run_dispatcher(world.settings, rounds=2)
    assert len(receiver.requests) == 1
    assert not await pending_flag(world.settings, record_id)
    assert len(await deliveries(world.settings, record_id)) == 1


async def test_delivered_report_posts_one_event_and_a_duplicate_report_none(
    stack: Stack, client_for: Any, receiver: Receiver
) -> None:
    world = await make_world(stack.settings())
    secret = await set_callback(world.settings, world.app_no, receiver.url)
    provider_no = f"aliyun-{secrets.token_hex(3)}"
    token = secrets.token_urlsafe(16)
    await run_sql(
        world.settings,
        "INSERT INTO sms_service_provider_config (channel_no, provider_name, provider_no,"
        " access_key_id, access_key_secret, endpoint, status, callback_token, created_at,"
        " updated_at) VALUES ('AliYun', 'x', :p, 'ak', '', '', 1, :t, CURRENT_TIMESTAMP,"
        " CURRENT_TIMESTAMP)",
        p=provider_no,
        t=token,
    )
    request_id, record_id = await insert_record(
        world.settings,
        world.app_no,
        status=SendStatus.SUBMITTED,
        provider_no=provider_no,
        message_id="900619^0",
    )
    report = [
        {
            "phone_number": "13800138000",
            "send_time": "2026-11-27 10:00:00",
            "report_time": "2026-11-27 10:00:05",
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
            "sms_size": "1",
            "biz_id": "900619^0",
            "out_id": request_id,
        }
    ]
    async with client_for(world.settings) as client:
        pushed = await client.post(f"/callbacks/{provider_no}/{token}", json=report)
        assert pushed.status_code == 200
        await receiver.wait_for(1)
        again = await client.post(f"/callbacks/{provider_no}/{token}", json=report)
        assert again.status_code == 200
    assert not await pending_flag(world.settings, record_id)
    await run_dispatcher(world.settings, rounds=2)
    [post] = receiver.requests
    assert signed_correctly(secret, post)
    event = post.event
    assert event["recordId"] == record_id and event["status"] == "DELIVERED"
    assert event["reportCode"] == "DELIVERED" and event["reportMessage"] == "用户接收成功"
    assert event["deliveredAt"] == "2026-11-27T02:00:05Z"


async def test_finish_records_flags_only_phones_that_became_final(stack: Stack) -> None:
    world = await make_world(stack.settings())
    await set_callback(world.settings, world.app_no, "http://127.0.0.1:9/hook")
    request_id, failed_id = await insert_record(
        world.settings, world.app_no, status=SendStatus.SENDING
    )
    _, accepted_id = await insert_record(
        world.settings,
        world.app_no,
        status=SendStatus.SENDING,
        phone=OTHER_PHONE,
        request_id=request_id,
    )
    engine = create_engine(world.settings)
    try:
        async with engine.begin() as conn:
            await finish_records(
                conn,
                request_id,
                [
                    RecordOutcome(PHONE, int(SendStatus.FAILED), "E", "no", 0, None, None),
                    RecordOutcome(OTHER_PHONE, int(SendStatus.SUBMITTED), "OK", "OK", 1, "m", "{}"),
                ],
            )
    finally:
        await engine.dispose()
    assert await pending_flag(world.settings, failed_id)
    assert not await pending_flag(world.settings, accepted_id)


async def test_apps_without_callback_url_get_no_outbox_rows(
    stack: Stack, client_for: Any, receiver: Receiver
) -> None:
    world = await make_world(stack.settings(), channel_ext={"reject_phones": [PHONE]})
    request = {"businessNo": world.business_no, "phones": [PHONE], "params": ["1234"]}
    # The app had a callback URL (one event arrives), then it was removed (blank).
    await set_callback(world.settings, world.app_no, receiver.url)
    async with client_for(world.settings) as client:
        before = await client.post("/api/v1/send-message", headers=world.auth, json=request)
        assert before.status_code == 502
        await receiver.wait_for(1)
        await set_callback(world.settings, world.app_no, "")
        [(url,)] = await run_sql(
            world.settings,
            "SELECT callback_url FROM sms_app_config WHERE app_no = :a",
            a=world.app_no,
        )
        assert url is None
        sent = await client.post("/api/v1/send-message", headers=world.auth, json=request)
        assert sent.status_code == 502
    [(record_id, status)] = await run_sql(
        world.settings,
        "SELECT id, status FROM sms_send_log WHERE request_id = :r",
        r=sent.json()["requestId"],
    )
    assert status == SendStatus.FAILED
    assert not await pending_flag(world.settings, record_id)
    await run_dispatcher(world.settings)
    assert await deliveries(world.settings, record_id) == []
    # Only the event from while the URL was set ever reached the receiver.
    assert [r.event["requestId"] for r in receiver.requests] == [before.json()["requestId"]]


# -- retries, dead letters, replay ------------------------------------------------------


async def test_failing_receiver_is_retried_then_dead_lettered_then_replayed(
    stack: Stack, client_for: Any, receiver: Receiver
) -> None:
    settings = stack.settings()
    world = await make_world(settings)
    secret = await set_callback(settings, world.app_no, receiver.url)
    request_id, record_id = await insert_record(settings, world.app_no, status=SendStatus.SENDING)
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await finish_records(
                conn,
                request_id,
                [RecordOutcome(PHONE, int(SendStatus.FAILED), "E", "no", 0, None, None)],
            )
    finally:
        await engine.dispose()

    receiver.status = 500
    schedule = {
        "base_delay": timedelta(seconds=0.2),
        "max_delay": timedelta(seconds=1),
        "max_age": timedelta(seconds=2),
        "jitter": lambda: 1.0,
    }
    deadline = time.monotonic() + 30
    while True:
        await run_dispatcher(settings, **schedule)
        [row] = await deliveries(settings, record_id)
        if row.status == "dead":
            break
        assert row.status == "pending"
        assert time.monotonic() < deadline, "never dead-lettered"
        await asyncio.sleep(0.05)
    # Retried with backoff inside the window, every attempt signed, the same event each time.
    assert row.attempts >= 2 and row.attempts == len(receiver.requests)
    assert row.last_error == "HTTP 500"
    assert all(signed_correctly(secret, post) for post in receiver.requests)
    assert len({post.body for post in receiver.requests}) == 1
    # Once dead, nothing more is sent.
    await run_dispatcher(settings, rounds=2, **schedule)
    assert len(receiver.requests) == row.attempts

    suffix = secrets.token_hex(3)
    await add_user(settings, f"wh-admin-{suffix}", "admin")
    await add_user(settings, f"wh-viewer-{suffix}", "viewer")
    receiver.status = 200
    async with client_for(settings) as client:
        admin = await login(client, f"wh-admin-{suffix}")
        viewer = await login(client, f"wh-viewer-{suffix}")
        listed = await client.get(
            f"{ADMIN}/webhook-dead-letters", params={"appNo": world.app_no}, headers=viewer
        )
        assert listed.status_code == 200
        [dead] = listed.json()["items"]
        assert dead["recordId"] == record_id and dead["attempts"] == row.attempts
        assert dead["lastError"] == "HTTP 500" and dead["event"]["status"] == "FAILED"
        other = await client.get(
            f"{ADMIN}/webhook-dead-letters", params={"appNo": "A-NOBODY"}, headers=viewer
        )
        assert other.json()["total"] == 0

        refused = await client.post(
            f"{ADMIN}/webhook-dead-letters/{dead['id']}/replay", headers=viewer
        )
        assert refused.status_code == 403
        replayed = await client.post(
            f"{ADMIN}/webhook-dead-letters/{dead['id']}/replay", headers=admin
        )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["status"] == "pending"
        await receiver.wait_for(row.attempts + 1)
        again = await client.post(
            f"{ADMIN}/webhook-dead-letters/{dead['id']}/replay", headers=admin
        )
        assert again.status_code == 409  # pending or delivered now, not dead
        missing = await client.post(f"{ADMIN}/webhook-dead-letters/999999999/replay", headers=admin)
        assert missing.status_code == 404
        audit = await client.get(
            f"{ADMIN}/audit-log", params={"resource": "webhooks"}, headers=admin
        )
        assert any(
            e["action"] == "replay" and e["resourceKey"] == f"{world.app_no}/{record_id}"
            for e in audit.json()["items"]
        )
    assert signed_correctly(secret, receiver.requests[-1])
    assert receiver.requests[-1].body == receiver.requests[0].body
    deadline = time.monotonic() + 10
    while (await deliveries(settings, record_id))[0].status != "delivered":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def dead_letter(settings: Settings, app_no: str) -> tuple[int, int]:
    """A dead letter written directly, for the listing pages."""
    _, record_id = await insert_record(settings, app_no, status=SendStatus.FAILED)
    body = json.dumps({"recordId": record_id, "status": "FAILED"})
    await run_sql(
        settings,
        "INSERT INTO sms_webhook_delivery (app_no, record_id, body, status, attempts,"
        " next_attempt_at, last_error, created_at, updated_at) VALUES (:a, :r, :b, 'dead', 9,"
        " CURRENT_TIMESTAMP, 'HTTP 503', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        a=app_no,
        r=record_id,
        b=body,
    )
    [(delivery_id,)] = await run_sql(
        settings, "SELECT id FROM sms_webhook_delivery WHERE record_id = :r", r=record_id
    )
    return int(delivery_id), record_id


async def test_console_lists_dead_letters_and_only_admins_replay(
    stack: Stack, client_for: Any
) -> None:
    settings = stack.settings()
    world = await make_world(settings)
    delivery_id, record_id = await dead_letter(settings, world.app_no)
    suffix = secrets.token_hex(3)
    await add_user(settings, f"whc-admin-{suffix}", "admin")
    await add_user(settings, f"whc-viewer-{suffix}", "viewer")
    async with client_for(settings) as client:
        csrf = await logged_in(client, f"whc-viewer-{suffix}")
        page = await client.get("/admin/webhooks", params={"app_no": world.app_no})
        assert page.status_code == 200
        assert f"/admin/records/{record_id}" in page.text and "HTTP 503" in page.text
        assert f"/admin/webhooks/{delivery_id}/replay" not in page.text
        denied = await client.post(f"/admin/webhooks/{delivery_id}/replay", data={"csrf": csrf})
        assert denied.status_code == 403
    async with client_for(settings) as client:
        csrf = await logged_in(client, f"whc-admin-{suffix}")
        page = await client.get("/admin/webhooks", params={"app_no": world.app_no})
        assert f'action="/admin/webhooks/{delivery_id}/replay"' in page.text
        forged = await client.post(f"/admin/webhooks/{delivery_id}/replay", data={"csrf": "x"})
        assert forged.status_code == 403
        done = await client.post(f"/admin/webhooks/{delivery_id}/replay", data={"csrf": csrf})
        assert done.status_code == 303
        after = await client.get("/admin/webhooks", params={"app_no": world.app_no})
        assert f"/admin/records/{record_id}" not in after.text
    [row] = await deliveries(settings, record_id)
    assert row.status == "pending"  # queued again, with a fresh retry window


# -- callback URL and secret in the admin API and console -------------------------------


async def assert_hidden(client: httpx.AsyncClient, secret: str, *urls: str, **kw: Any) -> None:
    for url in urls:
        response = await client.get(url, **kw)
        assert response.status_code == 200, (url, response.text)
        assert secret not in response.text, f"webhook secret shown by {url}"


async def test_callback_url_and_secret_through_the_admin_api(stack: Stack, client_for: Any) -> None:
    settings = stack.settings()
    suffix = secrets.token_hex(3)
    await add_user(settings, f"whs-admin-{suffix}", "admin")
    await add_user(settings, f"whs-viewer-{suffix}", "viewer")
    async with client_for(settings) as client:
        admin = await login(client, f"whs-admin-{suffix}")
        viewer = await login(client, f"whs-viewer-{suffix}")
        created = await client.post(
            f"{ADMIN}/apps",
            headers=admin,
            json={"appName": "hooks", "callbackUrl": "https://example.test/sms/hook"},
        )
        assert created.status_code == 201, created.text
        app = created.json()["app"]
        assert app["callbackUrl"] == "https://example.test/sms/hook"
        row_id = app["id"]
        for bad in ("ftp://example.test/x", "example.test/x", "https://u:p@example.test/"):
            refused = await client.patch(
                f"{ADMIN}/apps/{row_id}", headers=admin, json={"callbackUrl": bad}
            )
            assert refused.status_code == 400, (bad, refused.text)

        assert (
            await client.get(f"{ADMIN}/apps/{row_id}/webhook-secret", headers=viewer)
        ).status_code == 403
        shown = await client.get(f"{ADMIN}/apps/{row_id}/webhook-secret", headers=admin)
        assert shown.status_code == 200
        secret = shown.json()["webhookSecret"]
        assert secret.startswith("whsec_") and len(secret) > 40
        assert (await client.get(f"{ADMIN}/apps/{row_id}/webhook-secret", headers=admin)).json()[
            "webhookSecret"
        ] == secret
        [(stored,)] = await run_sql(
            settings, "SELECT webhook_secret FROM sms_app_config WHERE id = :i", i=row_id
        )
        assert stored.startswith("fernet:") and secret not in stored

        rotated = await client.post(f"{ADMIN}/apps/{row_id}/rotate-webhook-secret", headers=admin)
        new_secret = rotated.json()["webhookSecret"]
        assert new_secret != secret

        patched = await client.patch(
            f"{ADMIN}/apps/{row_id}", headers=admin, json={"remark": "x", "callbackUrl": ""}
        )
        assert patched.status_code == 200 and patched.json()["callbackUrl"] is None
        assert new_secret not in patched.text
        await assert_hidden(
            client,
            new_secret,
            f"{ADMIN}/apps",
            f"{ADMIN}/apps/{row_id}",
            f"{ADMIN}/audit-log",
            headers=admin,
        )
        audit = await client.get(f"{ADMIN}/audit-log", params={"resource": "apps"}, headers=admin)
        actions = {e["action"] for e in audit.json()["items"]}
        assert {"reveal-webhook-secret", "rotate-webhook-secret"} <= actions


async def test_console_app_form_sets_the_callback_and_shows_the_secret_on_request(
    stack: Stack, client_for: Any
) -> None:
    settings = stack.settings()
    world = await make_world(settings)
    row_id = await app_row_id(settings, world.app_no)
    suffix = secrets.token_hex(3)
    await add_user(settings, f"wha-admin-{suffix}", "admin")
    async with client_for(settings) as client:
        csrf = await logged_in(client, f"wha-admin-{suffix}")
        form = await client.get(f"/admin/apps/{row_id}")
        assert 'name="callback_url"' in form.text
        saved = await client.post(
            f"/admin/apps/{row_id}",
            data={
                "csrf": csrf,
                "app_name": "hooked",
                "callback_url": "https://example.test/hook",
                "status": "on",
            },
        )
        assert saved.status_code == 303, saved.text
        [(url,)] = await run_sql(
            settings, "SELECT callback_url FROM sms_app_config WHERE id = :i", i=row_id
        )
        assert url == "https://example.test/hook"
        shown = await client.post(
            f"/admin/apps/{row_id}/webhook-secret", data={"csrf": csrf, "rotate": "0"}
        )
        assert shown.status_code == 200
        secret = shown.text.split('id="webhook-secret">', 1)[1].split("<", 1)[0]
        assert secret.startswith("whsec_")
        await assert_hidden(client, secret, "/admin/apps", f"/admin/apps/{row_id}", "/admin/audit")
        forged = await client.post(f"/admin/apps/{row_id}/webhook-secret", data={"csrf": "x"})
        assert forged.status_code == 403 and secret not in forged.text
