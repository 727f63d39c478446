"""Logging out ends tokens and console sessions on the server, not only in the browser."""

from __future__ import annotations

import secrets
from typing import Any

from conftest import Stack
from test_admin_api import ADMIN, add_user, login
from test_console import logged_in


async def test_api_logout_ends_every_token_of_the_user(stack: Stack, client_for: Any) -> None:
    settings = stack.settings()
    suffix = secrets.token_hex(3)
    user, other = f"out-{suffix}", f"stay-{suffix}"
    await add_user(settings, user, "admin")
    await add_user(settings, other, "viewer")
    async with client_for(settings) as client:
        first, second, bystander = (
            await login(client, user),
            await login(client, user),
            await login(client, other),
        )
        assert (await client.get(f"{ADMIN}/me", headers=first)).status_code == 200
        out = await client.post(f"{ADMIN}/auth/logout", headers=first)
        assert out.status_code == 204, out.text
        for ended in (first, second):
            me = await client.get(f"{ADMIN}/me", headers=ended)
            assert me.status_code == 401, me.text
        again = await client.post(f"{ADMIN}/auth/logout", headers=first)
        assert again.status_code == 401
        assert (await client.get(f"{ADMIN}/me", headers=bystander)).status_code == 200
        fresh = await login(client, user)
        assert (await client.get(f"{ADMIN}/me", headers=fresh)).json()["username"] == user


async def test_console_logout_ends_a_copied_session_cookie(stack: Stack, client_for: Any) -> None:
    settings = stack.settings()
    username = f"cout-{secrets.token_hex(3)}"
    await add_user(settings, username, "admin")
    async with client_for(settings) as client:
        csrf = await logged_in(client, username)
        copied = client.cookies.get("smsgate_session", path="/admin")
        assert copied
        out = await client.post("/admin/logout", data={"csrf": csrf})
        assert out.status_code == 303
        client.cookies.set("smsgate_session", copied, path="/admin")
        replayed = await client.get("/admin")
        assert replayed.status_code == 303, replayed.text
        assert replayed.headers["location"].startswith("/admin/login")
        # The same token used as an API bearer token is ended too.
        api = await client.get(f"{ADMIN}/me", headers={"Authorization": f"Bearer {copied}"})
        assert api.status_code == 401
