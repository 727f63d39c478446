"""Console pages in-process: login, CSRF, roles, writes through ConfigService, records, send test.

Every response goes through `client_for`'s scan for the known provider secret.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PROVIDER_SECRET, Stack, run_sql
from smsgate.config import Settings
from smsgate.db.migrate import upgrade
from test_admin_api import PASSWORD, add_user

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CHART = re.compile(r'<svg id="(chart-[a-z-]+)"(.*?)</svg>', re.S)
RECORD_LINK = re.compile(r'href="/admin/records/(\d+)"')
# One row of the send page's results: the phone, then the link to its record.
RESULT_ROW = re.compile(r'<td>(\+\d+)</td>.*?href="/admin/records/(\d+)"', re.S)


@dataclass
class Console:
    client: httpx.AsyncClient
    csrf: str
    suffix: str


async def console_login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/admin/login")
    match = CSRF.search(page.text)
    assert match, page.text
    return await client.post(
        "/admin/login",
        data={"csrf": match.group(1), "username": username, "password": password, "next": "/admin"},
    )


async def logged_in(client: httpx.AsyncClient, username: str) -> str:
    response = await console_login(client, username, PASSWORD)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/admin"
    dashboard = await client.get("/admin")
    assert dashboard.status_code == 200
    match = CSRF.search(dashboard.text)
    assert match
    return match.group(1)


@pytest.fixture
async def users(stack: Stack) -> Any:
    settings = stack.settings()
    suffix = secrets.token_hex(3).upper()
    await add_user(settings, f"cadmin-{suffix}", "admin")
    await add_user(settings, f"cviewer-{suffix}", "viewer")
    return settings, suffix


async def create_chain(console: Console) -> dict[str, str]:
    """channel -> signature -> template -> app -> business through the console's forms."""
    c, csrf, s = console.client, console.csrf, console.suffix
    steps: list[tuple[str, dict[str, str]]] = [
        (
            "channels",
            {
                "channel_no": "Loopback",
                "provider_name": "Loopback console",
                "provider_no": f"clb-{s}",
                "access_key_id": "AKID-visible",
                "access_key_secret": PROVIDER_SECRET,
                "ext_json": '{"latency_ms": 0}',
                "status": "on",
            },
        ),
        ("signs", {"sign_name": "控制台", "provider_no": f"clb-{s}", "status": "on"}),
        (
            "templates",
            {
                "template_no": f"CT-{s}",
                "provider_no": f"clb-{s}",
                "sign_name": "控制台",
                "template_content": "验证码${code}",
                "third_party_template_no": "SMS_9",
                "status": "on",
            },
        ),
    ]
    for resource, form in steps:
        response = await c.post(f"/admin/{resource}/new", data={"csrf": csrf, **form})
        assert response.status_code == 303, response.text
    app = await c.post(
        "/admin/apps/new",
        data={
            "csrf": csrf,
            "app_no": f"CA-{s}",
            "app_name": f"console app {s}",
            "available_number": "50",
            "current_limiting": "0",
            "status": "on",
        },
    )
    assert app.status_code == 201, app.text
    key = re.search(r'id="app-key">([^<]+)<', app.text)
    assert key and key.group(1).startswith(f"CA-{s}.")
    business = await c.post(
        "/admin/businesses/new",
        data={
            "csrf": csrf,
            "business_no": f"CB-{s}",
            "business_name": "console login",
            "app_no": f"CA-{s}",
            "template_no": f"CT-{s}",
            "status": "on",
        },
    )
    assert business.status_code == 303, business.text
    return {"app_key": key.group(1), "business_no": f"CB-{s}", "provider_no": f"clb-{s}"}


async def test_login_pages_and_writes_go_through_the_rules(
    users: Any, client_for: Any, stack: Stack
) -> None:
    settings, suffix = users
    async with client_for(settings) as client:
        anonymous = await client.get("/admin/channels")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/admin/login?next=")
        console = Console(client, await logged_in(client, f"cadmin-{suffix}"), suffix)
        chain = await create_chain(console)

        # The app key works on the send API at once.
        sent = await client.post(
            "/api/v1/send-message",
            headers={"Authorization": f"Bearer {chain['app_key']}"},
            json={
                "businessNo": chain["business_no"],
                "phones": ["+8613800000001"],
                "params": ["1"],
            },
        )
        assert sent.status_code == 200, sent.text

        # The secret is stored (sealed), never shown: the edit form says only that one is set.
        channel = await run_sql(
            settings,
            "SELECT id, access_key_secret FROM sms_service_provider_config WHERE provider_no = :p",
            p=chain["provider_no"],
        )
        channel_id, sealed = channel[0]
        assert sealed and PROVIDER_SECRET not in sealed
        edit = await client.get(f"/admin/channels/{channel_id}")
        assert "a secret is stored" in edit.text

        # Saving the form with a blank secret keeps the stored one.
        saved = await client.post(
            f"/admin/channels/{channel_id}",
            data={
                "csrf": console.csrf,
                "channel_no": "Loopback",
                "provider_name": "renamed",
                "access_key_secret": "",
                "ext_json": '{"latency_ms": 0}',
                "status": "on",
            },
        )
        assert saved.status_code == 303, saved.text
        after = await run_sql(
            settings,
            "SELECT provider_name, access_key_secret FROM sms_service_provider_config "
            "WHERE id = :i",
            i=channel_id,
        )
        assert after[0] == ("renamed", sealed)

        # References are ConfigService's: a channel with signatures cannot be deleted.
        refused = await client.post(
            f"/admin/channels/{channel_id}/delete", data={"csrf": console.csrf}
        )
        assert refused.status_code == 409
        assert "signature" in refused.text

        # Test connection: ConfigService's check, which sends nothing to any phone.
        check = await client.post(f"/admin/channels/{channel_id}/test", data={"csrf": console.csrf})
        assert check.status_code == 200
        assert "Connection test: passed (OK)" in check.text

        # The audit log page shows who changed what, with the secret only as "(changed)".
        audit = await client.get("/admin/audit?resource=channels")
        assert f"cadmin-{suffix}" in audit.text and chain["provider_no"] in audit.text
        assert "(changed)" in audit.text

        # Lists search.
        listed = await client.get(f"/admin/businesses?q=CB-{suffix}")
        assert f"CB-{suffix}" in listed.text
        missing = await client.get("/admin/businesses?q=no-such-business-xyz")
        assert f"CB-{suffix}" not in missing.text


async def test_send_test_page_creates_records_shown_in_send_records(
    users: Any, client_for: Any
) -> None:
    settings, suffix = users
    # Phones of this test's own: the shared database holds other tests' sends.
    phone_a, phone_b = (f"+86139{secrets.randbelow(10**8):08d}" for _ in range(2))
    async with client_for(settings) as client:
        console = Console(client, await logged_in(client, f"cadmin-{suffix}"), suffix)
        chain = await create_chain(console)
        result = await client.post(
            "/admin/send",
            data={
                "csrf": console.csrf,
                "business_no": chain["business_no"],
                "phones": f"{phone_a}\n{phone_b.removeprefix('+86')}",
                "params": "4321",
            },
        )
        assert result.status_code == 200, result.text
        record_of = dict(RESULT_ROW.findall(result.text))
        assert set(record_of) == {phone_a, phone_b}
        detail = await client.get(f"/admin/records/{record_of[phone_a]}")
        assert "验证码4321" in detail.text and "SUBMITTED" in detail.text
        assert "sms_send_status" in detail.text  # the provider's raw response

        found = await client.get(
            f"/admin/records?businessNo={chain['business_no']}&status=SUBMITTED"
        )
        assert sorted(RECORD_LINK.findall(found.text)) == sorted(record_of.values())
        failed = await client.get(f"/admin/records?businessNo={chain['business_no']}&status=FAILED")
        assert RECORD_LINK.findall(failed.text) == []
        other = await client.get(f"/admin/records?businessNo={chain['business_no']}-other")
        assert RECORD_LINK.findall(other.text) == []
        # A national number is searched as the E.164 number it is.
        by_phone = await client.get(f"/admin/records?phone={phone_b.removeprefix('+86')}")
        assert RECORD_LINK.findall(by_phone.text) == [record_of[phone_b]]
        assert phone_b in by_phone.text and phone_a not in by_phone.text
        export = await client.get(f"/admin/records/export.csv?businessNo={chain['business_no']}")
        assert export.status_code == 200
        assert len(export.text.strip().splitlines()) == 3

        preview = await client.get(
            "/admin/templates/preview",
            params={
                "content": "验证码${code}" + "。" * 70,
                "sign_name": "控制台",
                "provider_no": chain["provider_no"],
                "params": "123456",
            },
        )
        body = preview.json()
        assert (
            body["ok"]
            and body["segments"] == 2
            and body["content"].startswith("【控制台】验证码123456")
        )


@pytest.fixture(params=["sqlite", "mariadb"])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A database of this test's own: the dashboard's figures cover the whole database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'dashboard.db'}"
        upgrade(url)
        return Stack("sqlite-own", url, None).settings()
    own: Stack = request.getfixturevalue("own_database")
    return own.settings()


async def test_dashboard_charts_count_the_sends(fresh_settings: Settings, client_for: Any) -> None:
    suffix = secrets.token_hex(3).upper()
    await add_user(fresh_settings, f"cadmin-{suffix}", "admin")
    async with client_for(fresh_settings) as client:
        console = Console(client, await logged_in(client, f"cadmin-{suffix}"), suffix)
        chain = await create_chain(console)
        sent = await client.post(
            "/admin/send",
            data={
                "csrf": console.csrf,
                "business_no": chain["business_no"],
                "phones": "+8613800000002\n+8613800000003",
                "params": "4321",
            },
        )
        assert sent.status_code == 200, sent.text
        dashboard = await client.get("/admin")
    assert dashboard.status_code == 200
    charts = dict(CHART.findall(dashboard.text))
    assert set(charts) == {"chart-per-day", "chart-channel-success", "chart-top-apps"}
    assert 'id="tile-total">2<' in dashboard.text
    # The only app, with both messages and one segment billed for each.
    assert f"CA-{suffix}: 2 (2 billed)" in charts["chart-top-apps"]
    assert f"{chain['provider_no']}: 100.0% of 2" in charts["chart-channel-success"]
    assert "SUBMITTED: 2" in charts["chart-per-day"]


async def test_forms_refuse_a_missing_or_foreign_csrf_token(users: Any, client_for: Any) -> None:
    settings, suffix = users
    async with client_for(settings) as client:
        await logged_in(client, f"cadmin-{suffix}")
        for token in ("", "forged"):
            response = await client.post(
                "/admin/apps/new", data={"csrf": token, "app_name": f"csrf {suffix}"}
            )
            assert response.status_code == 403
        rows = await run_sql(
            settings, "SELECT COUNT(*) FROM sms_app_config WHERE app_name = :n", n=f"csrf {suffix}"
        )
        assert rows[0][0] == 0
        # A login form without its cookie's token is refused too.
        client.cookies.delete("smsgate_login_csrf", path="/admin")
        login = await client.post(
            "/admin/login",
            data={"csrf": "x", "username": f"cadmin-{suffix}", "password": PASSWORD},
        )
        assert login.status_code == 403


async def test_viewer_reads_but_cannot_reach_forms_or_send(users: Any, client_for: Any) -> None:
    settings, suffix = users
    async with client_for(settings) as client:
        csrf = await logged_in(client, f"cviewer-{suffix}")
        listed = await client.get("/admin/channels")
        assert listed.status_code == 200
        assert 'href="/admin/channels/new"' not in listed.text
        assert "/delete" not in listed.text
        for path in ("/admin/channels/new", "/admin/apps/new", "/admin/send"):
            response = await client.get(path)
            assert response.status_code == 403, path
            assert "viewer" in response.text
        created = await client.post(
            "/admin/apps/new", data={"csrf": csrf, "app_name": f"viewer {suffix}"}
        )
        assert created.status_code == 403
        sent = await client.post("/admin/send", data={"csrf": csrf, "business_no": "B-1"})
        assert sent.status_code == 403
        assert (await client.get("/admin/records")).status_code == 200


async def test_logout_ends_the_session(users: Any, client_for: Any) -> None:
    settings, suffix = users
    async with client_for(settings) as client:
        csrf = await logged_in(client, f"cadmin-{suffix}")
        copied = client.cookies.get("smsgate_session", path="/admin")
        assert copied
        out = await client.post("/admin/logout", data={"csrf": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/admin/login"
        # The browser is told to drop the cookie...
        [deleted] = [
            c for c in out.headers.get_list("set-cookie") if c.startswith("smsgate_session=")
        ]
        assert "Max-Age=0" in deleted and "Path=/admin" in deleted
        assert client.cookies.get("smsgate_session") is None
        again = await client.get("/admin")
        assert again.status_code == 303 and again.headers["location"].startswith("/admin/login")
        # ...and a copy of it taken before logout no longer opens a page.
        client.cookies.set("smsgate_session", copied, path="/admin")
        replayed = await client.get("/admin")
        assert replayed.status_code == 303
        assert replayed.headers["location"].startswith("/admin/login")


async def test_login_throttling_is_shared_with_the_api(
    users: Any, client_for: Any, stack: Stack
) -> None:
    settings, suffix = users
    async with client_for(settings, client_ip=f"10.9.{secrets.randbelow(250)}.7") as client:
        for _ in range(5):
            wrong = await console_login(client, f"cadmin-{suffix}", "wrong password")
            assert wrong.status_code == 401
            assert "wrong username or password" in wrong.text
        locked = await console_login(client, f"cadmin-{suffix}", PASSWORD)
        assert locked.status_code == 429
        api = await client.post(
            "/api/v1/admin/auth/token",
            json={"username": f"cadmin-{suffix}", "password": PASSWORD},
        )
        assert api.status_code == 429
