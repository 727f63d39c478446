"""Blocklist / opt-out: the service, enforcement in the send path and provider opt-outs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import Stack, World, make_world, run_sql
from fake_endpoint import FakeProvider, fake_provider
from smsgate.blocklist.service import BlocklistService
from smsgate.db.models import SendStatus
from smsgate.db.session import create_engine
from smsgate.errors import BadRequest

URL = "/api/v1/send-message"
PHONE = "+8613800138000"
OTHER = "+8613900139000"
# Only the global-block test uses this number: a global entry affects every app.
GLOBAL = "+8613712345678"


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    async with fake_provider() as fake:
        yield fake


@pytest.fixture
async def blocklist(stack: Stack) -> AsyncIterator[BlocklistService]:
    engine = create_engine(stack.settings())
    try:
        yield BlocklistService(engine, refresh_seconds=0.05)
    finally:
        await engine.dispose()


def body(world: World, phones: list[str]) -> dict[str, Any]:
    return {"businessNo": world.business_no, "phones": phones, "params": ["1"]}


async def rows(world: World) -> list[Any]:
    return await run_sql(
        world.settings,
        "SELECT phone_number, status, code, fee FROM sms_send_log WHERE app_no = :a ORDER BY id",
        a=world.app_no,
    )


async def use_number(world: World) -> int:
    [row] = await run_sql(
        world.settings, "SELECT use_number FROM sms_app_config WHERE app_no = :a", a=world.app_no
    )
    return int(row[0])


# -- the service ---------------------------------------------------------------------------


async def test_add_list_remove(stack: Stack, blocklist: BlocklistService) -> None:
    world = await make_world(stack.settings())
    entry = await blocklist.add_block(
        "138 0013 8000", app_no=world.app_no, reason="complained", created_by="ops"
    )
    assert (entry.phone, entry.is_prefix, entry.app_no) == (PHONE, False, world.app_no)
    again = await blocklist.add_block(PHONE, app_no=world.app_no, created_by="someone")
    assert again.id == entry.id  # the same entry, not a second row
    prefix = await blocklist.add_block(
        "+86 170", is_prefix=True, app_no=world.app_no, created_by="ops"
    )
    assert prefix.phone == "+86170"

    page = await blocklist.list_blocks(app_no=world.app_no)
    assert page.total == 2
    assert [e.id for e in page.items] == [prefix.id, entry.id]  # newest first
    found = await blocklist.list_blocks(app_no=world.app_no, search="0013")
    assert [e.id for e in found.items] == [entry.id]
    assert (await blocklist.get_block(entry.id)) == entry

    removed = await blocklist.remove_block(entry.id)
    assert removed is not None and removed.id == entry.id
    assert await blocklist.remove_block(entry.id) is None
    assert (await blocklist.list_blocks(app_no=world.app_no)).total == 1
    assert entry.as_json()["phone"] == PHONE


@pytest.mark.parametrize(
    ("phone", "is_prefix"), [("not a phone", False), ("86170", True), ("+", True)]
)
async def test_invalid_entries_are_400(
    blocklist: BlocklistService, phone: str, is_prefix: bool
) -> None:
    with pytest.raises(BadRequest):
        await blocklist.add_block(phone, is_prefix=is_prefix, created_by="ops")


async def test_matching_scopes_and_prefixes(stack: Stack, blocklist: BlocklistService) -> None:
    world = await make_world(stack.settings())
    other_app = await make_world(stack.settings())
    await blocklist.add_block(PHONE, app_no=world.app_no, created_by="ops")
    await blocklist.add_block("+86139001", is_prefix=True, app_no=world.app_no, created_by="ops")
    blocked = await blocklist.blocked(world.app_no, [PHONE, OTHER, "+8613700137000"])
    assert set(blocked) == {PHONE, OTHER}
    assert blocked[OTHER].is_prefix
    assert await blocklist.blocked(other_app.app_no, [PHONE, OTHER]) == {}


async def test_other_process_changes_apply_after_refresh(
    stack: Stack, blocklist: BlocklistService
) -> None:
    world = await make_world(stack.settings())
    engine = create_engine(stack.settings())
    try:
        console = BlocklistService(engine)  # another node's service
        assert await blocklist.blocked(world.app_no, [PHONE]) == {}
        entry = await console.add_block(PHONE, app_no=world.app_no, created_by="ops")
        await asyncio.sleep(0.1)
        assert set(await blocklist.blocked(world.app_no, [PHONE])) == {PHONE}
        await console.remove_block(entry.id)
        await asyncio.sleep(0.1)
        assert await blocklist.blocked(world.app_no, [PHONE]) == {}
    finally:
        await engine.dispose()


# -- the send path --------------------------------------------------------------------------


async def test_blocked_phone_is_refused_without_provider_call(
    stack: Stack, client_for: Any, provider: FakeProvider, blocklist: BlocklistService
) -> None:
    world = await make_world(stack.settings(), endpoint=provider.url)
    entry = await blocklist.add_block(GLOBAL, reason="STOP by SMS", created_by="ops")  # global
    try:
        async with client_for(world.settings) as client:
            refused = await client.post(URL, json=body(world, [GLOBAL]), headers=world.auth)
            mixed = await client.post(URL, json=body(world, [GLOBAL, OTHER]), headers=world.auth)
    finally:
        await blocklist.remove_block(entry.id)
    assert refused.status_code == 403, refused.text
    [result] = refused.json()["results"]
    assert (result["status"], result["code"], result["fee"]) == ("FAILED", "BLOCKED", 0)
    assert "global blocklist" in result["message"] and "STOP by SMS" in result["message"]
    assert mixed.status_code == 207, mixed.text
    assert [r["code"] for r in mixed.json()["results"]] == ["BLOCKED", "OK"]
    assert provider.received == [OTHER]
    assert sorted((r.phone_number, r.status, r.code) for r in await rows(world)) == [
        (GLOBAL, SendStatus.FAILED, "BLOCKED"),
        (GLOBAL, SendStatus.FAILED, "BLOCKED"),
        (OTHER, SendStatus.SUBMITTED, "OK"),
    ]
    assert await use_number(world) == 1


async def test_prefix_block_of_one_app_leaves_other_apps(
    stack: Stack, client_for: Any, blocklist: BlocklistService
) -> None:
    world = await make_world(stack.settings())
    other = await make_world(stack.settings())
    await blocklist.add_block("+86138", is_prefix=True, app_no=world.app_no, created_by="ops")
    async with client_for(world.settings) as client:
        blocked = await client.post(URL, json=body(world, [PHONE]), headers=world.auth)
        allowed = await client.post(URL, json=body(other, [PHONE]), headers=other.auth)
    assert blocked.status_code == 403
    assert "prefix +86138" in blocked.json()["results"][0]["message"]
    assert allowed.status_code == 200, allowed.text


async def test_provider_opt_out_blocks_the_phone_for_the_app(
    stack: Stack, client_for: Any, provider: FakeProvider, blocklist: BlocklistService
) -> None:
    world = await make_world(stack.settings(), endpoint=provider.url)
    provider.opted_out.add(PHONE)
    async with client_for(world.settings) as client:
        first = await client.post(URL, json=body(world, [PHONE, OTHER]), headers=world.auth)
        second = await client.post(URL, json=body(world, [PHONE]), headers=world.auth)
    assert first.status_code == 207, first.text
    assert [r["code"] for r in first.json()["results"]] == ["21610", "OK"]
    assert second.status_code == 403, second.text
    assert second.json()["results"][0]["code"] == "BLOCKED"
    assert provider.received == [PHONE, OTHER]  # the second request never reached it
    [entry] = (await blocklist.list_blocks(app_no=world.app_no)).items
    assert (entry.phone, entry.app_no) == (PHONE, world.app_no)
    assert entry.created_by == f"provider:{world.provider_no}"
    assert "21610" in entry.reason
