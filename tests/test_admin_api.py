"""Admin REST API: auth and roles, CRUD with references, secrets, records, stats, audit."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from conftest import PROVIDER_SECRET, Stack, make_world, run_sql
from smsgate.app import create_app
from smsgate.config import Settings
from smsgate.db.session import create_engine, create_sessionmaker
from smsgate.users.service import UserService

ADMIN = "/api/v1/admin"
PASSWORD = "a long enough password"


async def add_user(settings: Settings, username: str, role: str) -> None:
    engine = create_engine(settings)
    try:
        await UserService(create_sessionmaker(engine)).set_user(username, PASSWORD, role)
    finally:
        await engine.dispose()


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post(
        f"{ADMIN}/auth/token", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tokenType"] == "bearer" and body["expiresIn"] > 0
    return {"Authorization": f"Bearer {body['accessToken']}"}


@dataclass
class Admin:
    client: httpx.AsyncClient
    admin: dict[str, str]
    viewer: dict[str, str]
    settings: Settings
    suffix: str


@pytest.fixture
async def api(stack: Stack, client_for: Any) -> Any:
    import secrets

    settings = stack.settings()
    suffix = secrets.token_hex(3).upper()
    await add_user(settings, f"admin-{suffix}", "admin")
    await add_user(settings, f"viewer-{suffix}", "viewer")
    async with client_for(settings) as client:
        yield Admin(
            client,
            await login(client, f"admin-{suffix}"),
            await login(client, f"viewer-{suffix}"),
            settings,
            suffix,
        )


async def create_chain(api: Admin) -> dict[str, Any]:
    """channel -> signature -> template -> app -> business through the API."""
    c, h, s = api.client, api.admin, api.suffix
    channel = await c.post(
        f"{ADMIN}/channels",
        headers=h,
        json={
            "channelNo": "Loopback",
            "providerName": "Loopback test",
            "providerNo": f"lb-{s}",
            "accessKeyId": "AKID-visible",
            "accessKeySecret": PROVIDER_SECRET,
            "extJson": {"latency_ms": 0},
        },
    )
    assert channel.status_code == 201, channel.text
    sign = await c.post(
        f"{ADMIN}/signs", headers=h, json={"signName": "测试签名", "providerNo": f"lb-{s}"}
    )
    assert sign.status_code == 201, sign.text
    template = await c.post(
        f"{ADMIN}/templates",
        headers=h,
        json={
            "templateNo": f"T-{s}",
            "signName": "测试签名",
            "providerNo": f"lb-{s}",
            "templateContent": "您的验证码是${code}",
            "thirdPartyTemplateNo": "SMS_1",
        },
    )
    assert template.status_code == 201, template.text
    app = await c.post(
        f"{ADMIN}/apps",
        headers=h,
        json={"appName": f"shop {s}", "availableNumber": 100, "currentLimiting": 50},
    )
    assert app.status_code == 201, app.text
    business = await c.post(
        f"{ADMIN}/businesses",
        headers=h,
        json={
            "businessName": "login code",
            "appNo": app.json()["appNo"],
            "templateNo": f"T-{s}",
        },
    )
    assert business.status_code == 201, business.text
    return {
        "channel": channel.json(),
        "sign": sign.json(),
        "template": template.json(),
        "app": app.json(),
        "business": business.json(),
    }


async def send(client: httpx.AsyncClient, key: str, business_no: str) -> httpx.Response:
    return await client.post(
        "/api/v1/send-message",
        json={"businessNo": business_no, "phones": ["+8613800138000"], "params": ["1234"]},
        headers={"Authorization": f"Bearer {key}"},
    )


# -- auth -------------------------------------------------------------------------------


async def test_login_errors_and_throttling(stack: Stack, client_for: Any) -> None:
    settings = stack.settings()
    await add_user(settings, "throttled", "admin")
    async with client_for(settings) as client:
        wrong = {"username": "throttled", "password": "wrong password"}
        for _ in range(5):
            response = await client.post(f"{ADMIN}/auth/token", json=wrong)
            assert response.status_code == 401
            assert response.json()["msg"] == "wrong username or password"
        locked = await client.post(
            f"{ADMIN}/auth/token", json={"username": "throttled", "password": PASSWORD}
        )
        assert locked.status_code == 429
        assert "15 minutes" in locked.json()["msg"]
        assert int(locked.headers["Retry-After"]) == 900
        unknown = await client.post(
            f"{ADMIN}/auth/token", json={"username": "nobody", "password": PASSWORD}
        )
        assert unknown.status_code == 401
    # The lock is for that user from that address only.
    async with client_for(settings, client_ip="10.9.8.7") as other:
        assert (await login(other, "throttled"))["Authorization"].startswith("Bearer v1.")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Bearer v1.e30.AAAA"}],
)
async def test_admin_api_needs_a_valid_token(api: Admin, headers: dict[str, str]) -> None:
    response = await api.client.get(f"{ADMIN}/channels", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == 401


async def test_password_change_invalidates_tokens(api: Admin) -> None:
    assert (await api.client.get(f"{ADMIN}/me", headers=api.admin)).status_code == 200
    await add_user(api.settings, f"admin-{api.suffix}", "admin")  # same password, new hash
    assert (await api.client.get(f"{ADMIN}/me", headers=api.admin)).status_code == 401


async def test_me_shows_the_role(api: Admin) -> None:
    me = await api.client.get(f"{ADMIN}/me", headers=api.viewer)
    assert me.json() == {"username": f"viewer-{api.suffix}", "role": "viewer"}


# -- CRUD, references, secrets ----------------------------------------------------------


async def test_full_chain_sends_and_secrets_stay_hidden(api: Admin) -> None:
    chain = await create_chain(api)
    channel = chain["channel"]
    assert channel["hasSecret"] is True and "accessKeySecret" not in channel
    assert channel["accessKeyId"] == "AKID-visible"
    assert json.loads(channel["extJson"]) == {"latency_ms": 0}
    assert chain["sign"]["providerName"] == "Loopback test"  # taken from the channel
    app = chain["app"]
    assert app["appKey"].startswith(app["appNo"] + ".")
    assert app["app"]["availableNumber"] == 100 and app["app"]["useNumber"] == 0
    assert chain["business"]["businessNo"].startswith("B-")

    # Stored encrypted, never in clear.
    [stored] = await run_sql(
        api.settings,
        "SELECT access_key_secret FROM sms_service_provider_config WHERE provider_no = :p",
        p=channel["providerNo"],
    )
    assert stored[0].startswith("fernet:") and PROVIDER_SECRET not in stored[0]

    # The app key works right away and the send goes through the new chain.
    response = await send(api.client, app["appKey"], chain["business"]["businessNo"])
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "SUBMITTED"

    # Edit with a blank secret keeps it; a new one replaces it (still hidden).
    url = f"{ADMIN}/channels/{channel['id']}"
    kept = await api.client.patch(
        url, headers=api.admin, json={"accessKeySecret": "", "remark": "x"}
    )
    assert kept.status_code == 200 and kept.json()["hasSecret"] and kept.json()["remark"] == "x"
    [after] = await run_sql(
        api.settings,
        "SELECT access_key_secret FROM sms_service_provider_config WHERE id = :i",
        i=channel["id"],
    )
    assert after[0] == stored[0]
    # Every view and list of channels leaves the secret out.
    listed = await api.client.get(f"{ADMIN}/channels", headers=api.viewer)
    assert all("accessKeySecret" not in item for item in listed.json()["items"])


async def test_validation_errors_name_the_cause(api: Admin) -> None:
    c, h = api.client, api.admin
    cases = [
        ("channels", {"channelNo": "Nope", "providerName": "x", "providerNo": "p1"}, "channelNo"),
        (
            "channels",
            {"channelNo": "Tencent", "providerName": "x", "providerNo": "p2"},
            "sdkAppId",
        ),
        ("channels", {"channelNo": "Loopback", "providerName": "x"}, "providerNo"),
        (
            "channels",
            {"channelNo": "Loopback", "providerName": "x", "providerNo": "p3", "extJson": "[1]"},
            "extJson",
        ),
        ("signs", {"signName": "s", "providerNo": "missing"}, "missing"),
        (
            "templates",
            {
                "templateNo": "T-x",
                "signName": "s",
                "providerNo": "missing",
                "templateContent": "a",
                "thirdPartyTemplateNo": "b",
            },
            "not registered",
        ),
        ("apps", {"appName": "a", "availableNumber": -1}, "availableNumber"),
        ("apps", {"appName": "a", "appNo": "has.dot"}, "appNo"),
        ("businesses", {"businessName": "b", "appNo": "A-NONE", "templateNo": "T"}, "A-NONE"),
        ("apps", {"appName": "a", "unknownField": 1}, "unknownField"),
    ]
    for resource, body, fragment in cases:
        response = await c.post(f"{ADMIN}/{resource}", headers=h, json=body)
        assert response.status_code == 400, (resource, body, response.text)
        assert fragment in response.json()["msg"], (fragment, response.json()["msg"])
    chain = await create_chain(api)
    bad_template = await c.patch(
        f"{ADMIN}/templates/{chain['template']['id']}",
        headers=h,
        json={"templateContent": "{1} and ${x}"},
    )
    assert bad_template.status_code == 400 and "templateContent" in bad_template.json()["msg"]
    duplicate = await c.post(
        f"{ADMIN}/signs",
        headers=h,
        json={"signName": "测试签名", "providerNo": chain["channel"]["providerNo"]},
    )
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["msg"]
    missing = await c.get(f"{ADMIN}/apps/999999999", headers=h)
    assert missing.status_code == 404


async def test_delete_refuses_while_used_then_succeeds(api: Admin) -> None:
    chain = await create_chain(api)
    c, h = api.client, api.admin
    order = [
        ("channels", chain["channel"]["id"], "signature"),
        ("signs", chain["sign"]["id"], "template"),
        ("templates", chain["template"]["id"], "business"),
        ("apps", chain["app"]["app"]["id"], "business"),
    ]
    for resource, row_id, used_by in order:
        refused = await c.delete(f"{ADMIN}/{resource}/{row_id}", headers=h)
        assert refused.status_code == 409, (resource, refused.text)
        assert used_by in refused.json()["msg"]
    deletions = [
        ("businesses", chain["business"]["id"]),
        ("apps", chain["app"]["app"]["id"]),
        ("templates", chain["template"]["id"]),
        ("signs", chain["sign"]["id"]),
        ("channels", chain["channel"]["id"]),
    ]
    for resource, row_id in deletions:
        response = await c.delete(f"{ADMIN}/{resource}/{row_id}", headers=h)
        assert response.status_code == 204, (resource, response.text)
        assert (await c.get(f"{ADMIN}/{resource}/{row_id}", headers=h)).status_code == 404


async def test_list_filters_search_and_pages(api: Admin) -> None:
    chain = await create_chain(api)
    c, h = api.client, api.viewer
    by_provider = await c.get(
        f"{ADMIN}/templates",
        headers=h,
        params={"providerNo": chain["channel"]["providerNo"]},
    )
    assert [t["templateNo"] for t in by_provider.json()["items"]] == [f"T-{api.suffix}"]
    searched = await c.get(f"{ADMIN}/apps", headers=h, params={"q": f"shop {api.suffix}"})
    assert searched.json()["total"] == 1
    for n in range(3):
        await c.post(f"{ADMIN}/apps", headers=api.admin, json={"appName": f"page-{api.suffix}-{n}"})
    first = await c.get(
        f"{ADMIN}/apps", headers=h, params={"q": f"page-{api.suffix}", "pageSize": 2}
    )
    second = await c.get(
        f"{ADMIN}/apps", headers=h, params={"q": f"page-{api.suffix}", "pageSize": 2, "page": 2}
    )
    assert first.json()["total"] == 3 and len(first.json()["items"]) == 2
    assert len(second.json()["items"]) == 1
    disabled = await c.post(f"{ADMIN}/apps/{chain['app']['app']['id']}/disable", headers=api.admin)
    assert disabled.json()["status"] is False
    only_disabled = await c.get(
        f"{ADMIN}/apps", headers=h, params={"status": "false", "q": api.suffix}
    )
    assert [a["appNo"] for a in only_disabled.json()["items"]] == [chain["app"]["appNo"]]


async def test_viewer_is_read_only(api: Admin) -> None:
    chain = await create_chain(api)
    c, v = api.client, api.viewer
    assert (await c.get(f"{ADMIN}/channels/{chain['channel']['id']}", headers=v)).status_code == 200
    attempts = [
        c.post(f"{ADMIN}/apps", headers=v, json={"appName": "nope"}),
        c.patch(f"{ADMIN}/apps/{chain['app']['app']['id']}", headers=v, json={"remark": "x"}),
        c.post(f"{ADMIN}/apps/{chain['app']['app']['id']}/rotate-key", headers=v),
        c.post(f"{ADMIN}/businesses/{chain['business']['id']}/disable", headers=v),
        c.delete(f"{ADMIN}/businesses/{chain['business']['id']}", headers=v),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 403, response.text
        assert "viewer" in response.json()["msg"]


# -- changes reach the send path at once ------------------------------------------------


async def test_disable_and_rotate_take_effect_at_once(api: Admin) -> None:
    chain = await create_chain(api)
    key, business = chain["app"]["appKey"], chain["business"]
    assert (await send(api.client, key, business["businessNo"])).status_code == 200
    await api.client.post(f"{ADMIN}/businesses/{business['id']}/disable", headers=api.admin)
    assert (await send(api.client, key, business["businessNo"])).status_code == 403
    await api.client.post(f"{ADMIN}/businesses/{business['id']}/enable", headers=api.admin)
    assert (await send(api.client, key, business["businessNo"])).status_code == 200
    rotated = await api.client.post(
        f"{ADMIN}/apps/{chain['app']['app']['id']}/rotate-key", headers=api.admin
    )
    new_key = rotated.json()["appKey"]
    assert new_key != key
    assert (await send(api.client, key, business["businessNo"])).status_code == 401
    assert (await send(api.client, new_key, business["businessNo"])).status_code == 200


# -- send records, export, stats, audit -------------------------------------------------


async def test_send_records_search_detail_and_csv(api: Admin) -> None:
    chain = await create_chain(api)
    key, business_no = chain["app"]["appKey"], chain["business"]["businessNo"]
    for phone in ["+8613800138000", "+8613900139000"]:
        response = await api.client.post(
            "/api/v1/send-message",
            json={"businessNo": business_no, "phones": [phone], "params": ["=1+2"]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200
    c, h = api.client, api.viewer
    app_no = chain["app"]["appNo"]
    listed = await c.get(f"{ADMIN}/send-records", headers=h, params={"appNo": app_no})
    assert listed.json()["total"] == 2
    by_phone = await c.get(
        f"{ADMIN}/send-records", headers=h, params={"appNo": app_no, "phone": "13900139000"}
    )
    [record] = by_phone.json()["items"]
    assert record["phoneNumber"] == "+8613900139000" and record["status"] == "SUBMITTED"
    none_failed = await c.get(
        f"{ADMIN}/send-records", headers=h, params={"appNo": app_no, "status": "FAILED"}
    )
    assert none_failed.json()["total"] == 0
    future = (date.today() + timedelta(days=2)).isoformat()
    later = await c.get(
        f"{ADMIN}/send-records", headers=h, params={"appNo": app_no, "from": future}
    )
    assert later.json()["total"] == 0
    bad_status = await c.get(f"{ADMIN}/send-records", headers=h, params={"status": "NOPE"})
    assert bad_status.status_code == 400 and "SUBMITTED" in bad_status.json()["msg"]

    detail = await c.get(f"{ADMIN}/send-records/{record['id']}", headers=h)
    assert detail.json()["content"] == "您的验证码是=1+2"
    assert detail.json()["params"] == ["=1+2"]
    assert json.loads(detail.json()["providerResponse"])["sms_send_status"]

    export = await c.get(f"{ADMIN}/send-records/export.csv", headers=h, params={"appNo": app_no})
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0][:3] == ["id", "createdAt", "requestId"]
    assert len(rows) == 3
    content_index = rows[0].index("content")
    assert {r[content_index] for r in rows[1:]} == {"您的验证码是=1+2"}


async def test_stats_by_day_channel_and_app(api: Admin) -> None:
    chain = await create_chain(api)
    key, business_no = chain["app"]["appKey"], chain["business"]["businessNo"]
    # Days are UTC days (created_at is naive UTC); the sends may straddle UTC midnight.
    first_day = datetime.now(UTC).date()
    for _ in range(3):
        assert (await send(api.client, key, business_no)).status_code == 200
    last_day = datetime.now(UTC).date()
    await run_sql(
        api.settings,
        "UPDATE sms_send_log SET status = 3 WHERE app_no = :a AND id = "
        "(SELECT m FROM (SELECT MIN(id) AS m FROM sms_send_log WHERE app_no = :a) AS x)",
        a=chain["app"]["appNo"],
    )
    c, h = api.client, api.viewer
    span = {
        "appNo": chain["app"]["appNo"],
        "from": first_day.isoformat(),
        "to": (last_day + timedelta(days=1)).isoformat(),  # exclusive
    }
    by_app = await c.get(f"{ADMIN}/stats", headers=h, params={"groupBy": "app", **span})
    assert by_app.json()["rows"] == [
        {"key": chain["app"]["appNo"], "total": 3, "sent": 3, "delivered": 1, "failed": 0, "fee": 3}
    ]
    by_channel = await c.get(f"{ADMIN}/stats", headers=h, params={"groupBy": "channel", **span})
    assert [r["key"] for r in by_channel.json()["rows"]] == [chain["channel"]["providerNo"]]
    by_day = await c.get(f"{ADMIN}/stats", headers=h, params={"groupBy": "day", **span})
    days = by_day.json()["rows"]
    assert {r["key"] for r in days} <= {first_day.isoformat(), last_day.isoformat()}
    assert sum(r["total"] for r in days) == 3
    bad = await c.get(
        f"{ADMIN}/stats", headers=h, params={"from": "2026-01-10", "to": "2026-01-01"}
    )
    assert bad.status_code == 400


@contextmanager
def local_zone(zone: str) -> Iterator[None]:
    """This process's local time zone (POSIX TZ) for the block: date.today() follows it."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


async def test_stats_default_range_ends_with_the_utc_day(api: Admin) -> None:
    """Without from/to the range is the last 30 UTC days, whatever the server's zone: a
    server west of UTC must not drop today's rows (created_at is UTC)."""
    chain = await create_chain(api)
    key, business_no = chain["app"]["appKey"], chain["business"]["businessNo"]
    # At any moment one of these zones (UTC-12, UTC+14) is on another date than UTC.
    for zone in ("WEST+12", "EAST-14"):
        with local_zone(zone):
            if date.today() == datetime.now(UTC).date():
                continue
            before = datetime.now(UTC).date()
            assert (await send(api.client, key, business_no)).status_code == 200
            stats = await api.client.get(
                f"{ADMIN}/stats",
                headers=api.viewer,
                params={"groupBy": "app", "appNo": chain["app"]["appNo"]},
            )
            after = datetime.now(UTC).date()
        break
    else:
        raise AssertionError("no test zone is on another date than UTC")
    body = stats.json()
    assert body["to"] in {(d + timedelta(days=1)).isoformat() for d in (before, after)}
    assert date.fromisoformat(body["to"]) - date.fromisoformat(body["from"]) == timedelta(days=30)
    assert [(r["key"], r["total"]) for r in body["rows"]] == [(chain["app"]["appNo"], 1)]


async def test_audit_log_records_changes_without_secrets(api: Admin) -> None:
    chain = await create_chain(api)
    await api.client.patch(
        f"{ADMIN}/channels/{chain['channel']['id']}",
        headers=api.admin,
        json={"accessKeySecret": PROVIDER_SECRET + "-new", "remark": "rotated"},
    )
    log = await api.client.get(
        f"{ADMIN}/audit-log", headers=api.viewer, params={"resource": "channels"}
    )
    entries = [e for e in log.json()["items"] if e["resourceKey"] == chain["channel"]["providerNo"]]
    assert [e["action"] for e in entries] == ["update", "create"]
    update = entries[0]
    assert update["username"] == f"admin-{api.suffix}"
    assert update["changes"]["accessKeySecret" if False else "access_key_secret"] == [
        "(hidden)",
        "(changed)",
    ]
    assert update["changes"]["remark"] == [None, "rotated"]
    assert "-new" not in json.dumps(log.json())


async def test_csv_export_streams_100k_rows(stack: Stack) -> None:
    """The export reads through a server-side cursor: memory stays far below the data size."""
    import tracemalloc

    from smsgate.records.queries import RecordFilter
    from smsgate.records.service import RecordService

    world = await make_world(stack.settings())
    rows = [
        {
            "request_id": f"{n:036d}",
            "app_no": world.app_no,
            "business_no": world.business_no,
            "template_no": world.template_no,
            "provider_no": world.provider_no,
            "status": 2,
            "fee": 1,
            "phone_number": f"+86138{n:08d}",
            "message": "OK",
            "code": "OK",
            "content": "Your code is 123456",
        }
        for n in range(100_000)
    ]
    from smsgate.records.repository import insert_records

    engine = create_engine(world.settings)
    try:
        async with engine.begin() as conn:
            for start in range(0, len(rows), 10_000):
                await insert_records(conn, rows[start : start + 10_000])
        del rows
        service = RecordService(engine)
        tracemalloc.start()
        lines = 0
        size = 0
        async for chunk in service.export_csv(RecordFilter(app_no=world.app_no)):
            lines += chunk.count(b"\n")
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        await engine.dispose()
    assert lines == 100_001
    assert size > 10_000_000
    assert peak < size / 4, f"export held {peak} bytes for {size} bytes of CSV"
    # The route streams the same generator: no Content-Length (a whole body would have one),
    # and every row. (httpx's ASGI transport joins the chunks, so their number is not seen.)
    username = f"csv-{world.app_no}"
    await add_user(world.settings, username, "viewer")
    # Not client_for: its secret-leak hook reads every body whole before the test sees it.
    async with (
        LifespanManager(create_app(world.settings)) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gw"
        ) as client,
    ):
        headers = await login(client, username)
        async with client.stream(
            "GET",
            f"{ADMIN}/send-records/export.csv",
            headers=headers,
            params={"appNo": world.app_no},
        ) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers
            chunks = [chunk async for chunk in response.aiter_raw()]
    assert sum(chunk.count(b"\n") for chunk in chunks) == 100_001
