"""The console in a real browser (Playwright driving Debian's Chromium) against `smsgate serve`.

Saves a screenshot of each page to docs/screenshots/ (shown in the README).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import PROVIDER_SECRET, REPO_ROOT, TEST_SECRET_KEY, free_port
from servers import SMSGATE, running_server

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# The README's screenshots are refreshed only on request (SMSGATE_SCREENSHOTS=1), so an
# ordinary test run leaves the work tree clean; otherwise they go to a temporary folder.
SHOTS = (
    REPO_ROOT / "docs" / "screenshots"
    if os.environ.get("SMSGATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "smsgate-screenshots"
)
PASSWORD = "browser test password"


def _env(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    env["SMSGATE_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    env["SMSGATE_SECRET_KEY"] = TEST_SECRET_KEY
    return env


def _create_user(env: dict[str, str], name: str, role: str) -> None:
    result = subprocess.run(
        [SMSGATE, "admin", "create-user", name, "--role", role, "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"user {name} created ({role})" in result.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    env = _env(tmp_path / "console.db")
    _create_user(env, "ops", "admin")
    _create_user(env, "auditor", "viewer")
    port = free_port()
    with running_server(port, env, "--no-migrate"):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Visitor:
    """Checks every page it is shown for the provider secret and can save a screenshot."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.seen = 0

    def check(self, shot: str | None = None) -> None:
        self.page.wait_for_load_state("load")
        html = self.page.content()
        self.seen += 1
        assert PROVIDER_SECRET not in html, f"provider secret on {self.page.url}"
        if shot:
            SHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)

    def goto(self, path: str, shot: str | None = None) -> None:
        self.page.goto(self.base + path)
        self.check(shot)

    def submit(self, shot: str | None = None) -> None:
        with self.page.expect_navigation():
            self.page.locator("#edit-form button[type=submit]").click()
        self.check(shot)


def _login(v: Visitor, username: str, shot: str | None = None) -> None:
    v.goto("/admin/login", shot)
    v.page.fill("input[name=username]", username)
    v.page.fill("input[name=password]", PASSWORD)
    with v.page.expect_navigation():
        v.page.click("button[type=submit]")
    v.check()
    assert v.page.locator("#whoami").inner_text().startswith(username)


def test_console_main_flow_in_a_browser(server: str, browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    v = Visitor(page, server)

    _login(v, "ops", "login")

    # channel -> signature -> template -> app -> business, all through the pages
    v.goto("/admin/channels")
    page.click("#add")
    v.check()
    page.select_option("select[name=channel_no]", "Loopback")
    page.fill("input[name=provider_name]", "Loopback demo")
    page.fill("input[name=provider_no]", "lb-browser")
    page.fill("input[name=access_key_id]", "AKID-browser")
    page.fill("input[name=access_key_secret]", PROVIDER_SECRET)
    page.fill("textarea[name=ext_json]", '{"latency_ms": 5}')
    v.check("channel-form")
    v.submit("channels")
    expect(page.locator(".notice")).to_contain_text("Created: lb-browser")

    page.click("text=Edit")
    v.check()
    with page.expect_navigation():
        page.click("#test-connection")
    v.check("channel-test-connection")
    expect(page.locator("#check-result")).to_contain_text("passed")

    v.goto("/admin/signs/new")
    page.fill("input[name=sign_name]", "短信网关")
    page.select_option("select[name=provider_no]", "lb-browser")
    v.submit("signs")
    expect(page.locator(".notice")).to_contain_text("短信网关")

    v.goto("/admin/templates/new")
    page.fill("input[name=template_no]", "T-LOGIN")
    page.select_option("select[name=provider_no]", "lb-browser")
    page.select_option("select[name=sign_name]", "短信网关")
    page.fill("textarea[name=template_content]", "您的验证码是${code}, ${minutes}分钟内有效。")
    page.fill("input[name=third_party_template_no]", "SMS_100")
    page.fill("#sample-params", "123456,5")
    expect(page.locator("#preview-content")).to_have_text(
        "【短信网关】您的验证码是123456, 5分钟内有效。"
    )
    expect(page.locator("#preview-meta")).to_contain_text("1 segment(s)")
    v.check("template-form")
    v.submit("templates")

    v.goto("/admin/apps/new")
    page.fill("input[name=app_name]", "Shop backend")
    page.fill("input[name=available_number]", "1000")
    page.fill("input[name=current_limiting]", "60")
    v.submit("app-key")
    key = page.locator("#app-key").inner_text()
    app_no = key.split(".", 1)[0]
    assert re.fullmatch(r"A-[0-9A-F]{8}", app_no), key

    v.goto("/admin/businesses/new")
    page.fill("input[name=business_name]", "Login code")
    page.fill("input[name=business_no]", "B-LOGIN")
    page.select_option("select[name=app_no]", app_no)
    page.select_option("select[name=template_no]", "T-LOGIN")
    v.submit()
    v.goto("/admin/businesses", "businesses")
    v.goto("/admin/apps", "apps")

    # Send from the test page, then find the record.
    v.goto("/admin/send")
    page.select_option("select[name=business_no]", "B-LOGIN")
    page.fill("textarea[name=phones]", "+8613800138000\n+8613900139000")
    page.fill("textarea[name=params]", "654321\n5")
    with page.expect_navigation():
        page.click("#send-form button[type=submit]")
    v.check("send-test")
    expect(page.locator("#send-results tbody tr")).to_have_count(2)
    expect(page.locator("#send-results")).to_contain_text("SUBMITTED")
    with page.expect_navigation():
        page.locator(".record-link").first.click()
    v.check("record-detail")
    expect(page.locator("#record-status")).to_have_text("SUBMITTED")
    expect(page.locator("#record-content")).to_have_text("您的验证码是654321, 5分钟内有效。")

    v.goto("/admin/records")
    page.fill("input[name=phone]", "13900139000")
    with page.expect_navigation():
        page.click("#record-filters button[type=submit]")
    v.check("records")
    rows = page.locator("table.rows tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("+8613900139000")
    expect(rows.first).to_contain_text("B-LOGIN")

    # The dashboard draws its three charts, with the messages just sent.
    v.goto("/admin", "dashboard")
    expect(page.locator("#tile-total")).to_have_text("2")
    expect(page.locator("#chart-per-day rect[data-status=SUBMITTED]")).to_have_count(1)
    expect(page.locator("#chart-channel-success")).to_contain_text("lb-browser")
    expect(page.locator("#chart-channel-success")).to_contain_text("100.0% of 2")
    expect(page.locator("#chart-top-apps")).to_contain_text(app_no)

    v.goto("/admin/channels", "channels")
    v.goto("/admin/templates", "templates")
    v.goto("/admin/audit", "audit-log")
    expect(page.locator("#audit")).to_contain_text("access_key_secret")

    # A viewer reads, but no edit form is reachable and nothing can be sent.
    with page.expect_navigation():
        page.click("text=Log out")
    v.check()
    _login(v, "auditor")
    v.goto("/admin/channels", "viewer-channels")
    expect(page.locator("#add")).to_have_count(0)
    expect(page.locator("text=Edit")).to_have_count(0)
    expect(page.locator("nav >> text=Send test")).to_have_count(0)
    for path in ("/admin/channels/new", "/admin/channels/1", "/admin/apps/new", "/admin/send"):
        response = page.goto(server + path)
        assert response is not None and response.status == 403, path
        v.check()
        expect(page.locator(".error")).to_contain_text("viewer")
        expect(page.locator("form.edit")).to_have_count(0)
    assert v.seen > 20
    page.close()
