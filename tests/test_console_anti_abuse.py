"""Console pages for the anti-abuse settings: the blocklist and a business's limits."""

from __future__ import annotations

from typing import Any

from conftest import run_sql
from test_console import Console, create_chain, logged_in, users  # noqa: F401


async def test_blocklist_page_blocks_and_unblocks(users: Any, client_for: Any) -> None:  # noqa: F811
    settings, suffix = users
    async with client_for(settings) as client:
        console = Console(client, await logged_in(client, f"cadmin-{suffix}"), suffix)
        chain = await create_chain(console)
        added = await client.post(
            "/admin/blocklist",
            data={
                "csrf": console.csrf,
                "phone": "13800000002",
                "app_no": f"CA-{suffix}",
                "reason": "complaint",
            },
        )
        assert added.status_code == 303, added.text
        page = await client.get("/admin/blocklist", params={"app_no": f"CA-{suffix}"})
        assert "+8613800000002" in page.text and "complaint" in page.text
        sent = await client.post(
            "/api/v1/send-message",
            headers={"Authorization": f"Bearer {chain['app_key']}"},
            json={
                "businessNo": chain["business_no"],
                "phones": ["+8613800000002"],
                "params": ["1"],
            },
        )
        assert sent.status_code == 403 and sent.json()["results"][0]["code"] == "BLOCKED"

        bad = await client.post(
            "/admin/blocklist", data={"csrf": console.csrf, "phone": "nope", "app_no": ""}
        )
        assert bad.status_code == 400 and 'id="error"' in bad.text
        no_csrf = await client.post("/admin/blocklist", data={"phone": "+8613800000003"})
        assert no_csrf.status_code == 403

        [(block_id,)] = await run_sql(
            settings, "SELECT id FROM sms_blocklist WHERE app_no = :a", a=f"CA-{suffix}"
        )
        removed = await client.post(
            f"/admin/blocklist/{block_id}/delete", data={"csrf": console.csrf}
        )
        assert removed.status_code == 303
        assert (
            "+8613800000002"
            not in (await client.get("/admin/blocklist", params={"app_no": f"CA-{suffix}"})).text
        )


async def test_viewer_sees_the_blocklist_without_forms(users: Any, client_for: Any) -> None:  # noqa: F811
    settings, suffix = users
    async with client_for(settings) as client:
        csrf = await logged_in(client, f"cviewer-{suffix}")
        page = await client.get("/admin/blocklist")
        assert page.status_code == 200 and 'id="add-block"' not in page.text
        refused = await client.post("/admin/blocklist", data={"csrf": csrf, "phone": "+86138"})
        assert refused.status_code == 403


async def test_business_form_sets_per_phone_limits(users: Any, client_for: Any) -> None:  # noqa: F811
    settings, suffix = users
    async with client_for(settings) as client:
        console = Console(client, await logged_in(client, f"cadmin-{suffix}"), suffix)
        chain = await create_chain(console)
        [(business_id,)] = await run_sql(
            settings,
            "SELECT id FROM sms_business_config WHERE business_no = :b",
            b=chain["business_no"],
        )
        form = await client.get(f"/admin/businesses/{business_id}")
        assert 'name="phone_limit_minute"' in form.text and 'name="is_verification"' in form.text
        saved = await client.post(
            f"/admin/businesses/{business_id}",
            data={
                "csrf": console.csrf,
                "business_name": "console login",
                "app_no": f"CA-{suffix}",
                "template_no": f"CT-{suffix}",
                "is_verification": "on",
                "phone_limit_minute": "1",
                "status": "on",
            },
        )
        assert saved.status_code == 303, saved.text
        [row] = await run_sql(
            settings,
            "SELECT is_verification, phone_limit_minute FROM sms_business_config WHERE id = :i",
            i=business_id,
        )
        assert (bool(row[0]), row[1]) == (True, 1)
