"""Where an operator finds a channel's delivery-report URL, and who may see it."""

from __future__ import annotations

import secrets
from typing import Any

from conftest import Stack, make_world, run_sql
from test_admin_api import ADMIN, add_user, login
from test_console import logged_in


async def channel(world: Any) -> tuple[int, str]:
    [(row_id, token)] = await run_sql(
        world.settings,
        "SELECT id, callback_token FROM sms_service_provider_config WHERE provider_no = :p",
        p=world.provider_no,
    )
    return int(row_id), str(token)


async def test_viewers_do_not_see_the_callback_path(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    row_id, token = await channel(world)
    viewer = f"cb-viewer-{secrets.token_hex(3)}"
    await add_user(world.settings, viewer, "viewer")
    async with client_for(world.settings) as client:
        headers = await login(client, viewer)
        one = await client.get(f"{ADMIN}/channels/{row_id}", headers=headers)
        listed = await client.get(
            f"{ADMIN}/channels", params={"q": world.provider_no}, headers=headers
        )
    assert one.status_code == 200, one.text
    assert one.json()["providerNo"] == world.provider_no
    assert one.json()["callbackPath"] is None
    [item] = [i for i in listed.json()["items"] if i["providerNo"] == world.provider_no]
    assert item["callbackPath"] is None
    assert token not in one.text and token not in listed.text


async def test_console_channel_page_shows_the_report_url_to_admins(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings())
    row_id, token = await channel(world)
    admin = f"cb-admin-{secrets.token_hex(3)}"
    await add_user(world.settings, admin, "admin")
    async with client_for(world.settings) as client:
        await logged_in(client, admin)
        page = await client.get(f"/admin/channels/{row_id}")
    assert page.status_code == 200, page.text
    assert f"http://gw/callbacks/{world.provider_no}/{token}" in page.text
    viewer = f"cb-cviewer-{secrets.token_hex(3)}"
    await add_user(world.settings, viewer, "viewer")
    async with client_for(world.settings) as client:
        await logged_in(client, viewer)
        edit = await client.get(f"/admin/channels/{row_id}")
        listed = await client.get(f"/admin/channels?q={world.provider_no}")
    assert edit.status_code == 403 and token not in edit.text  # viewers cannot open it
    assert listed.status_code == 200, listed.text
    assert world.provider_no in listed.text and token not in listed.text
