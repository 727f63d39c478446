"""AliyunAdapter against the Aliyun simulator, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from smsgate.providers.aliyun import AliyunAdapter
from smsgate.providers.base import ChannelConfig, ErrorKind, ProviderError
from smsgate.providers.simulators import aliyun as sim

from .conftest import AK, SECRET, make_request, running


def channel(url: str, **ext: Any) -> ChannelConfig:
    return ChannelConfig("p-ali", "AliYun", AK, SECRET, endpoint=url, ext=ext)


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_send_success_signed_and_mapped(session: aiohttp.ClientSession, version: str) -> None:
    async with running(sim.create_app) as simulator:
        adapter = AliyunAdapter(channel(simulator.url, signature_version=version), session)
        result = await adapter.send(
            make_request(["+8613800138000", "+8613900139000"], correlation_id="req-42")
        )
    assert [r.phone for r in result.results] == ["+8613800138000", "+8613900139000"]
    assert all(r.accepted and r.code == "OK" for r in result.results)
    biz_ids = {r.provider_message_id for r in result.results}
    assert len(biz_ids) == 1 and next(iter(biz_ids)).endswith("^0")  # one BizId per request
    (received,) = simulator.requests
    assert received["auth_ok"] is True
    params = received["params"]
    assert params["PhoneNumbers"] == "8613800138000,8613900139000"
    assert params["SignName"] == "阿里云短信测试"
    assert params["OutId"] == "req-42"
    assert json.loads(params["TemplateParam"]) == {"code": "1234"}
    if version == "v3":
        assert received["headers"]["Authorization"].startswith("ACS3-HMAC-SHA256 Credential=")
    else:
        assert "Signature=" in received["body"]


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_each_call_is_signed_afresh(session: aiohttp.ClientSession, version: str) -> None:
    async with running(sim.create_app) as simulator:
        adapter = AliyunAdapter(channel(simulator.url, signature_version=version), session)
        await adapter.send(make_request(["+8613800138000"]))
        await adapter.send(make_request(["+8613800138000"]))
    # A reused nonce would have been answered with SignatureNonceUsed.
    assert [r["answer_code"] for r in simulator.requests] == ["OK", "OK"]


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_wrong_secret_is_permanent_signature_error(
    session: aiohttp.ClientSession, version: str
) -> None:
    async with running(sim.create_app) as simulator:
        config = replace(
            channel(simulator.url, signature_version=version), access_key_secret="wrong"
        )
        with pytest.raises(ProviderError) as caught:
            await AliyunAdapter(config, session).send(make_request(["+8613800138000"]))
    assert caught.value.kind is ErrorKind.PERMANENT
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "SignatureDoesNotMatch" in caught.value.raw


async def test_unknown_access_key(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        config = replace(channel(simulator.url), access_key_id="nobody")
        with pytest.raises(ProviderError) as caught:
            await AliyunAdapter(config, session).send(make_request(["+8613800138000"]))
    assert (caught.value.kind, caught.value.code) == (
        ErrorKind.PERMANENT,
        "InvalidAccessKeyId.NotFound",
    )


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_stale_clock_is_rejected_as_expired(
    session: aiohttp.ClientSession, version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(sim.create_app) as simulator:
        # The simulator's clock runs 20 minutes ahead of ours: beyond Aliyun's 15-minute skew.
        monkeypatch.setattr(simulator.state, "now", lambda: __import__("time").time() + 1200)
        adapter = AliyunAdapter(channel(simulator.url, signature_version=version), session)
        with pytest.raises(ProviderError) as caught:
            await adapter.send(make_request(["+8613800138000"]))
    assert (caught.value.kind, caught.value.code) == (
        ErrorKind.PERMANENT,
        "InvalidTimeStamp.Expired",
    )


@pytest.mark.parametrize(
    ("phone", "kind", "code"),
    [
        ("+8613800009001", ErrorKind.PERMANENT, "isv.MOBILE_NUMBER_ILLEGAL"),
        ("+8613800009002", ErrorKind.RATE_LIMITED, "isv.BUSINESS_LIMIT_CONTROL"),
        ("+8613800009003", ErrorKind.RATE_LIMITED, "isv.DAY_LIMIT_CONTROL"),
        ("+8613800009004", ErrorKind.RETRYABLE, "isp.SYSTEM_ERROR"),
    ],
)
async def test_error_kinds_keep_provider_code(
    session: aiohttp.ClientSession, phone: str, kind: ErrorKind, code: str
) -> None:
    async with running(sim.create_app) as simulator:
        with pytest.raises(ProviderError) as caught:
            await AliyunAdapter(channel(simulator.url), session).send(make_request([phone]))
    assert (caught.value.kind, caught.value.code) == (kind, code)
    assert caught.value.message  # the provider's own message is kept


async def test_forced_outcome_via_control_endpoint(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        async with session.post(
            f"{simulator.url}/_sim/outcomes", json={"outcome": "rate_limited"}
        ) as resp:
            assert resp.status == 200
        adapter = AliyunAdapter(channel(simulator.url), session)
        with pytest.raises(ProviderError) as caught:
            await adapter.send(make_request(["+8613800138000"]))
        ok = await adapter.send(make_request(["+8613800138000"]))
        async with session.get(f"{simulator.url}/_sim/requests") as resp:
            recorded = await resp.json()
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert ok.results[0].accepted
    assert [r["answer_code"] for r in recorded] == ["isv.BUSINESS_LIMIT_CONTROL", "OK"]


async def test_timeout_is_ambiguous(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        adapter = AliyunAdapter(channel(simulator.url, timeout_ms=200), session)
        with pytest.raises(ProviderError) as caught:
            await adapter.send(make_request(["+8613800009005"]))
    assert caught.value.kind is ErrorKind.AMBIGUOUS
    assert len(simulator.requests) == 1  # it did reach the provider


async def test_failure_rate_one_fails_every_call(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app, failure_rate=1.0) as simulator:
        with pytest.raises(ProviderError) as caught:
            await AliyunAdapter(channel(simulator.url), session).send(
                make_request(["+8613800138000"])
            )
    assert caught.value.kind is ErrorKind.RETRYABLE


async def test_connection_refused_is_retryable(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        url = simulator.url
    with pytest.raises(ProviderError) as caught:
        await AliyunAdapter(channel(url), session).send(make_request(["+8613800138000"]))
    assert caught.value.kind is ErrorKind.RETRYABLE


async def test_unsigned_content_type_is_refused(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        adapter = AliyunAdapter(channel(simulator.url), session)
        await adapter.send(make_request(["+8613800138000"]))
        sent = simulator.requests[0]["headers"]
        headers = {k: v for k, v in sent.items() if k.lower() not in ("content-length",)}
        headers["Content-Type"] = "text/plain"
        headers["x-acs-signature-nonce"] = "another-nonce"
        auth = headers["Authorization"].replace("content-type;", "")
        headers["Authorization"] = auth
        async with session.post(
            f"{simulator.url}/", params=simulator.requests[0]["query"], headers=headers
        ) as resp:
            answer = await resp.json(content_type=None)
    assert sent["Content-Type"] == "application/x-www-form-urlencoded"
    assert "content-type;host" in sent["Authorization"]
    assert resp.status == 400
    assert answer["Code"] == "IncompleteSignature"


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_tricky_characters_survive_signing_on_the_wire(
    session: aiohttp.ClientSession, version: str
) -> None:
    value = "码 1+2*3~4&5=6/😀"
    async with running(sim.create_app) as simulator:
        adapter = AliyunAdapter(channel(simulator.url, signature_version=version), session)
        result = await adapter.send(
            make_request(["+8613800138000"], params=(value,), sign_name="签名 *+~")
        )
    assert result.results[0].accepted
    params = simulator.requests[0]["params"]
    assert params["SignName"] == "签名 *+~"
    assert json.loads(params["TemplateParam"]) == {"code": value}


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_query_send_details_finds_our_out_id(
    session: aiohttp.ClientSession, version: str
) -> None:
    from datetime import date, timedelta

    async with running(sim.create_app) as simulator:
        adapter = AliyunAdapter(channel(simulator.url, signature_version=version), session)
        sent = await adapter.send(make_request(["+8613800138000"], correlation_id="req-9"))
        # The day the simulator recorded the send (Beijing time), not the day it is now.
        today = date.fromisoformat(simulator.state.sent[0]["send_date"][:10])
        details = await adapter.query_send_details("+8613800138000", today)
        other_day = await adapter.query_send_details("+8613800138000", today - timedelta(days=1))
    assert [(d.phone, d.out_id, d.send_status, d.err_code) for d in details] == [
        ("8613800138000", "req-9", 3, "DELIVERED")
    ]
    assert other_day == []
    assert sent.results[0].provider_message_id
