"""POST /api/v1/send-message: the seed's contract and every error-table row, on both stacks."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

import pytest

from conftest import Stack, World, make_world, run_sql
from smsgate.db.models import SendStatus

URL = "/api/v1/send-message"
PHONE = "+8618200000068"


async def records(world: World, request_id: str | None = None) -> list[Any]:
    query = (
        "SELECT phone_number, status, fee, code, message, content, params, provider_message_id,"
        " provider_response, request_id, business_no, template_no, provider_no"
        " FROM sms_send_log WHERE app_no = :app"
    )
    params: dict[str, Any] = {"app": world.app_no}
    if request_id:
        query += " AND request_id = :rid"
        params["rid"] = request_id
    return await run_sql(world.settings, query + " ORDER BY id", **params)


async def use_number(world: World) -> int:
    rows = await run_sql(
        world.settings, "SELECT use_number FROM sms_app_config WHERE app_no = :a", a=world.app_no
    )
    return int(rows[0][0])


def body(world: World, **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "businessNo": world.business_no,
        "phones": [PHONE],
        "params": ["123456"],
    }
    value.update(overrides)
    return value


def assert_envelope(payload: dict[str, Any], code: int) -> None:
    assert payload["code"] == code
    uuid.UUID(payload["requestId"])
    assert isinstance(payload["msg"], str) and payload["msg"]
    if code != 200:
        assert payload["data"] is None


async def test_seed_sample_request_gives_seed_response(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world), headers=world.auth)
    assert response.status_code == 200
    payload = response.json()
    assert_envelope(payload, 200)
    assert payload["data"] == 200
    assert list(payload)[:4] == ["requestId", "code", "msg", "data"]
    raw = json.loads(payload["msg"])  # the channel's raw body, as in the seed
    assert raw["sms_send_status"][0]["phone"] == PHONE
    assert raw["sms_send_status"][0]["code"] == "OK"
    [result] = payload["results"]
    assert result["phone"] == PHONE
    assert result["status"] == "SUBMITTED"
    assert result["fee"] == 1
    assert result["code"] == "OK"
    assert result["providerMessageId"] == raw["sms_send_status"][0]["biz_id"]

    [row] = await records(world, payload["requestId"])
    assert row.phone_number == PHONE
    assert row.status == SendStatus.SUBMITTED
    assert row.content == "Your code is 123456"
    assert json.loads(row.params) == ["123456"]
    assert row.provider_message_id == result["providerMessageId"]
    assert row.provider_response == payload["msg"]
    assert (row.business_no, row.template_no, row.provider_no) == (
        world.business_no,
        world.template_no,
        world.provider_no,
    )
    assert await use_number(world) == 1


async def test_comma_separated_phones_and_local_numbers(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        response = await client.post(
            URL,
            json=body(world, phones="13800138000,+8613900139000", params="654321"),
            headers=world.auth,
        )
    assert response.status_code == 200, response.text
    phones = [r["phone"] for r in response.json()["results"]]
    assert phones == ["+8613800138000", "+8613900139000"]
    rows = await records(world)
    assert sorted(r.phone_number for r in rows) == sorted(phones)
    assert {r.status for r in rows} == {SendStatus.SUBMITTED}
    assert await use_number(world) == 2


async def test_tencent_style_placeholders_and_fee(stack: Stack, client_for: Any) -> None:
    # 【smsgate】 (9) + 70 characters = 79 > 70: two segments of 67.
    world = await make_world(stack.settings(), template_content="{1}" + "x" * 60 + "{2}")
    async with client_for(world.settings) as client:
        response = await client.post(
            URL, json=body(world, params=["abcde", 12345]), headers=world.auth
        )
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["fee"] == 2
    [row] = await records(world)
    assert row.content == "abcde" + "x" * 60 + "12345"
    assert row.fee == 2
    assert await use_number(world) == 2


# -- 400 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "body"),
        (b'{"phones": ["+8618200000068"]}', "businessNo"),
        (b'{"businessNo": "X"}', "phones"),
        (b'{"businessNo": 5, "phones": ["+8618200000068"]}', "businessNo"),
        (b'{"businessNo": "B", "phones": [1]}', "phones"),
        (b'{"businessNo": "B", "phones": {"a": 1}}', "phones"),
        (b'{"businessNo": "B", "phones": ["+8618200000068"], "params": [{"a": 1}]}', "params"),
        (b'{"businessNo": "B", "phones": ["+8618200000068"], "params": [true]}', "params"),
        (b'{"businessNo": "", "phones": ["+8618200000068"]}', "businessNo"),
    ],
)
async def test_malformed_bodies_are_400(
    stack: Stack, client_for: Any, raw: bytes, fragment: str
) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        response = await client.post(
            URL, content=raw, headers={**world.auth, "Content-Type": "application/json"}
        )
    assert response.status_code == 400, response.text
    payload = response.json()
    assert_envelope(payload, 400)
    assert fragment in payload["msg"]
    assert await records(world) == []


@pytest.mark.parametrize(
    ("phones", "params", "fragment"),
    [
        (["12345"], ["1"], "phones[0]"),
        (["+8618200000068", "not-a-phone"], ["1"], "phones[1]"),
        (["+8618200000068", "18200000068"], ["1"], "more than once"),
        ([], ["1"], "at least one"),
        ([""], ["1"], "at least one"),
        (["+8618200000068"], [], "takes 1 param"),
        (["+8618200000068"], ["1", "2"], "got 2"),
        (["+8618200000068"], ["x" * 2000], "characters"),
    ],
)
async def test_invalid_phones_and_params_are_400(
    stack: Stack, client_for: Any, phones: list[str], params: list[str], fragment: str
) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        response = await client.post(
            URL, json=body(world, phones=phones, params=params), headers=world.auth
        )
    assert response.status_code == 400, response.text
    assert fragment in response.json()["msg"]
    assert await records(world) == []
    assert await use_number(world) == 0


async def test_too_many_phones_is_400_and_cap_is_configurable(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings())
    phones = [f"+86138{n:08d}" for n in range(1001)]
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world, phones=phones), headers=world.auth)
    assert response.status_code == 400
    assert "1001" in response.json()["msg"] and "1000" in response.json()["msg"]
    async with client_for(
        world.settings.model_copy(update={"max_phones_per_request": 2})
    ) as client:
        response = await client.post(URL, json=body(world, phones=phones[:3]), headers=world.auth)
    assert response.status_code == 400
    assert "at most 2" in response.json()["msg"]
    assert await records(world) == []


async def test_unicode_sql_and_html_params_are_stored_verbatim(
    stack: Stack, client_for: Any
) -> None:
    world = await make_world(stack.settings(), template_content="${a}|${b}|${c}|${d}")
    params = ["验证码😀", "'); DROP TABLE sms_send_log; --", "<script>alert(1)</script>", ""]
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world, params=params), headers=world.auth)
    assert response.status_code == 200, response.text
    # Read back from the same table: the DROP TABLE in a param was stored, not run.
    [row] = await records(world)
    assert row.content == "|".join(params)
    assert json.loads(row.params) == params


# -- 401 / 403 / 404 --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer nodot"},
        {"Authorization": "Bearer A-NOPE.secret"},
    ],
)
async def test_missing_or_wrong_key_is_401(
    stack: Stack, client_for: Any, headers: dict[str, str]
) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world), headers=headers)
    assert response.status_code == 401
    assert_envelope(response.json(), 401)
    assert "key" in response.json()["msg"]


async def test_wrong_secret_for_existing_app_is_401(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    forged = world.app_key[:-4] + "AAAA"
    async with client_for(world.settings) as client:
        response = await client.post(
            URL, json=body(world), headers={"Authorization": f"Bearer {forged}"}
        )
    assert response.status_code == 401
    assert await records(world) == []


async def test_unknown_business_is_404(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world, businessNo="B-NOPE"), headers=world.auth)
    assert response.status_code == 404
    assert "B-NOPE" in response.json()["msg"]


async def test_business_of_another_app_is_403(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    other = await make_world(world.settings)
    async with client_for(world.settings) as client:
        response = await client.post(
            URL, json=body(world, businessNo=other.business_no), headers=world.auth
        )
    assert response.status_code == 403
    assert "another app" in response.json()["msg"]


@pytest.mark.parametrize(
    ("table", "column", "fragment"),
    [
        ("sms_app_config", "app_no", "app"),
        ("sms_business_config", "business_no", "business"),
        ("sms_template_config", "template_no", "template"),
        ("sms_sign_config", "provider_no", "signature"),
        ("sms_service_provider_config", "provider_no", "channel"),
    ],
)
async def test_disabled_links_are_403(
    stack: Stack, client_for: Any, table: str, column: str, fragment: str
) -> None:
    world = await make_world(stack.settings())
    key = {
        "app_no": world.app_no,
        "business_no": world.business_no,
        "template_no": world.template_no,
        "provider_no": world.provider_no,
    }[column]
    await run_sql(world.settings, f"UPDATE {table} SET status = 0 WHERE {column} = :k", k=key)  # noqa: S608
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world), headers=world.auth)
    assert response.status_code == 403, response.text
    assert fragment in response.json()["msg"] and "disabled" in response.json()["msg"]
    assert await records(world) == []


async def test_missing_template_is_403_naming_it(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings())
    await run_sql(
        world.settings,
        "DELETE FROM sms_template_config WHERE template_no = :t",
        t=world.template_no,
    )
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world), headers=world.auth)
    assert response.status_code == 403
    assert world.template_no in response.json()["msg"]


# -- 402 / 429 --------------------------------------------------------------------------


async def test_quota_exhausted_is_402_and_nothing_written(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings(), quota=2)
    phones = ["+8613800138000", "+8613900139000", "+8618200000068"]
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world, phones=phones), headers=world.auth)
        assert response.status_code == 402
        assert "needs 3" in response.json()["msg"] and "2 left" in response.json()["msg"]
        assert await records(world) == []
        assert await use_number(world) == 0
        ok = await client.post(URL, json=body(world, phones=phones[:2]), headers=world.auth)
        assert ok.status_code == 200
        again = await client.post(URL, json=body(world, phones=phones[2:]), headers=world.auth)
        assert again.status_code == 402
    assert await use_number(world) == 2


async def test_rate_limit_is_429_with_retry_after(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings(), rate_limit=3)
    async with client_for(world.settings) as client:
        first = await client.post(
            URL, json=body(world, phones=["+8613800138000", "+8613900139000"]), headers=world.auth
        )
        assert first.status_code == 200
        over = await client.post(
            URL, json=body(world, phones=["+8618200000068", "+8613700137000"]), headers=world.auth
        )
        assert over.status_code == 429
        assert_envelope(over.json(), 429)
        assert "current_limiting" in over.json()["msg"]
        retry_after = int(over.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        fits = await client.post(
            URL, json=body(world, phones=["+8618200000068"]), headers=world.auth
        )
        assert fits.status_code == 200
        full = await client.post(URL, json=body(world), headers=world.auth)
        assert full.status_code == 429
    assert len(await records(world)) == 3


async def test_quota_refusal_gives_back_the_rate_limit(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings(), quota=1, rate_limit=2)
    async with client_for(world.settings) as client:
        refused = await client.post(
            URL, json=body(world, phones=["+8613800138000", "+8613900139000"]), headers=world.auth
        )
        assert refused.status_code == 402
        # The two messages refused for quota did not use the per-minute budget.
        await run_sql(
            world.settings,
            "UPDATE sms_app_config SET available_number = 10 WHERE app_no = :a",
            a=world.app_no,
        )
        ok = await client.post(
            URL, json=body(world, phones=["+8613800138000", "+8613900139000"]), headers=world.auth
        )
        assert ok.status_code == 200, ok.text


# -- provider outcomes: 502 / 504 / 207 -------------------------------------------------


@pytest.mark.parametrize("kind", ["permanent", "retryable", "rate_limited"])
async def test_provider_failure_is_502_and_quota_refunded(
    stack: Stack, client_for: Any, kind: str
) -> None:
    world = await make_world(stack.settings(), channel_ext={"error_kind": kind})
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world), headers=world.auth)
    assert response.status_code == 502
    payload = response.json()
    assert_envelope(payload, 502)
    assert "rejected every phone" in payload["msg"]
    assert payload["results"][0]["status"] == "FAILED"
    [row] = await records(world)
    assert row.status == SendStatus.FAILED
    assert row.code == f"LOOPBACK_{kind.upper()}"
    assert await use_number(world) == 0


async def test_provider_timeout_is_504_and_records_unknown(stack: Stack, client_for: Any) -> None:
    world = await make_world(stack.settings(), channel_ext={"error_kind": "ambiguous"})
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world), headers=world.auth)
    assert response.status_code == 504
    assert response.json()["results"][0]["status"] == "UNKNOWN"
    [row] = await records(world)
    assert row.status == SendStatus.UNKNOWN
    # The message may have been sent and billed: the quota is kept.
    assert await use_number(world) == 1


async def test_partial_acceptance_is_207(stack: Stack, client_for: Any) -> None:
    rejected = "+8613900139000"
    world = await make_world(stack.settings(), channel_ext={"reject_phones": [rejected]})
    phones = ["+8613800138000", rejected]
    async with client_for(world.settings) as client:
        response = await client.post(URL, json=body(world, phones=phones), headers=world.auth)
    assert response.status_code == 207
    payload = response.json()
    assert payload["data"] is None
    statuses = {r["phone"]: r["status"] for r in payload["results"]}
    assert statuses == {"+8613800138000": "SUBMITTED", rejected: "FAILED"}
    rows = {r.phone_number: r for r in await records(world)}
    assert rows[rejected].status == SendStatus.FAILED
    assert rows[rejected].code == "LOOPBACK_REJECTED"
    assert rows["+8613800138000"].status == SendStatus.SUBMITTED
    assert await use_number(world) == 1


# -- 503 --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "mariadb"])
async def test_database_unreachable_is_503(client_for: Any, tmp_path: Any, kind: str) -> None:
    from conftest import free_port
    from smsgate.config import Settings

    url = {
        "sqlite": f"sqlite+aiosqlite:///{tmp_path}/missing-dir/smsgate.db",
        "mariadb": f"mysql+asyncmy://root@127.0.0.1:{free_port()}/nope",
    }[kind]
    before = set(threading.enumerate())
    async with client_for(Settings(database_url=url)) as client:
        response = await client.post(
            URL,
            json={"businessNo": "B-1", "phones": [PHONE], "params": ["1"]},
            headers={"Authorization": "Bearer A-1.secret"},
        )
        # aiosqlite stops its worker thread after a failed connect without waiting for it;
        # let it finish while this event loop still runs (else it reports a closed loop).
        # A thread no longer listed has finished already.
        workers = [
            t
            for t in set(threading.enumerate()) - before
            if "_connection_worker_thread" in t.name  # aiosqlite's, named after its target
        ]
        for worker in workers:
            await asyncio.to_thread(worker.join, 10)
            assert not worker.is_alive()
        await asyncio.sleep(0)  # the callbacks the workers handed to this loop
    assert response.status_code == 503
    assert_envelope(response.json(), 503)
    assert "database" in response.json()["msg"]


async def test_redis_unreachable_is_503_and_nothing_written(
    mariadb_stack: Stack, client_for: Any
) -> None:
    from conftest import free_port

    world = await make_world(mariadb_stack.settings(), rate_limit=10)
    broken = world.settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with client_for(broken) as client:
        response = await client.post(URL, json=body(world), headers=world.auth)
    assert response.status_code == 503
    assert "Redis" in response.json()["msg"]
    assert await records(world) == []
    assert await use_number(world) == 0
