"""Qiniu, Huawei and Twilio adapters against their simulators, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from smsgate.providers.base import ChannelConfig, ErrorKind, ProviderError
from smsgate.providers.huawei import HuaweiAdapter
from smsgate.providers.qiniu import QiniuAdapter
from smsgate.providers.simulators import huawei as huawei_sim
from smsgate.providers.simulators import qiniu as qiniu_sim
from smsgate.providers.simulators import twilio as twilio_sim
from smsgate.providers.twilio import TwilioAdapter

from .conftest import AK, SECRET, make_request, running

# --- Qiniu ---------------------------------------------------------------------------------


def qiniu_channel(url: str, **ext: Any) -> ChannelConfig:
    return ChannelConfig("p-qn", "Qiniu", AK, SECRET, endpoint=url, ext=ext)


async def test_qiniu_success(session: aiohttp.ClientSession) -> None:
    async with running(qiniu_sim.create_app) as simulator:
        adapter = QiniuAdapter(qiniu_channel(simulator.url, signature_id="sig-9"), session)
        result = await adapter.send(
            make_request(["+8613800138000", "+8613900139000"], correlation_id="seq-1")
        )
    assert all(r.accepted for r in result.results)
    assert len({r.provider_message_id for r in result.results}) == 1  # one job_id per call
    (received,) = simulator.requests
    assert received["auth_ok"] is True
    assert received["headers"]["Authorization"].startswith(f"Qiniu {AK}:")
    assert received["params"] == {
        "template_id": "SMS_154950909",
        "mobiles": ["13800138000", "13900139000"],
        "parameters": {"code": "1234"},
        "seq": "seq-1",
        "signature_id": "sig-9",
    }


async def test_qiniu_wrong_secret_and_stale_date(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(qiniu_sim.create_app) as simulator:
        bad = replace(qiniu_channel(simulator.url), access_key_secret="wrong")
        with pytest.raises(ProviderError) as wrong:
            await QiniuAdapter(bad, session).send(make_request(["+8613800138000"]))
        monkeypatch.setattr(simulator.state, "now", lambda: time.time() + 3600)
        with pytest.raises(ProviderError) as stale:
            await QiniuAdapter(qiniu_channel(simulator.url), session).send(
                make_request(["+8613800138000"])
            )
    assert (wrong.value.kind, wrong.value.code, wrong.value.message) == (
        ErrorKind.PERMANENT,
        "BadToken",
        "bad token",
    )
    assert (stale.value.code, stale.value.message) == ("BadToken", "X-Qiniu-Date expired")


@pytest.mark.parametrize(
    ("phone", "kind", "code"),
    [
        ("+8613800009001", ErrorKind.PERMANENT, "InvalidQueryValue"),
        ("+8613800009002", ErrorKind.RATE_LIMITED, "TooManyRequests"),
        ("+8613800009003", ErrorKind.RATE_LIMITED, "AccountBalanceNotEnough"),
        ("+8613800009004", ErrorKind.RETRYABLE, "ServerInternalError"),
    ],
)
async def test_qiniu_error_kinds(
    session: aiohttp.ClientSession, phone: str, kind: ErrorKind, code: str
) -> None:
    async with running(qiniu_sim.create_app) as simulator:
        with pytest.raises(ProviderError) as caught:
            await QiniuAdapter(qiniu_channel(simulator.url), session).send(make_request([phone]))
    assert (caught.value.kind, caught.value.code) == (kind, code)


async def test_qiniu_timeout_is_ambiguous(session: aiohttp.ClientSession) -> None:
    async with running(qiniu_sim.create_app) as simulator:
        adapter = QiniuAdapter(qiniu_channel(simulator.url, timeout_ms=200), session)
        with pytest.raises(ProviderError) as caught:
            await adapter.send(make_request(["+8613800009005"]))
    assert caught.value.kind is ErrorKind.AMBIGUOUS


# --- Huawei --------------------------------------------------------------------------------


def huawei_channel(url: str, **ext: Any) -> ChannelConfig:
    return ChannelConfig(
        "p-hw", "Huawei", AK, SECRET, endpoint=url, sdk_app_id="8824110605470", ext=ext
    )


def huawei_request(phones: list[str], **kwargs: Any) -> Any:
    return make_request(phones, names=("1",), template="验证码${1}", template_id="tpl-1", **kwargs)


@pytest.mark.parametrize("scheme", ["wsse", "aksk"])
async def test_huawei_success_and_partial_failure(
    session: aiohttp.ClientSession, scheme: str
) -> None:
    async with running(huawei_sim.create_app) as simulator:
        adapter = HuaweiAdapter(huawei_channel(simulator.url, auth_scheme=scheme), session)
        result = await adapter.send(
            huawei_request(["+8613800138000", "+8613800009001"], correlation_id="ext-1")
        )
    ok, bad = result.results
    assert ok.accepted and ok.provider_message_id and ok.fee == 1
    assert (bad.accepted, bad.code, bad.error_kind) == (False, "E200015", ErrorKind.PERMANENT)
    (received,) = simulator.requests
    assert received["auth_ok"] is True
    assert received["params"] == {
        "from": "8824110605470",
        "to": "+8613800138000,+8613800009001",
        "templateId": "tpl-1",
        "templateParas": '["1234"]',
        "extend": "ext-1",
    }


@pytest.mark.parametrize(("scheme", "code"), [("wsse", "E000101"), ("aksk", "E000045")])
async def test_huawei_wrong_secret(session: aiohttp.ClientSession, scheme: str, code: str) -> None:
    async with running(huawei_sim.create_app) as simulator:
        config = replace(huawei_channel(simulator.url, auth_scheme=scheme), access_key_secret="x")
        with pytest.raises(ProviderError) as caught:
            await HuaweiAdapter(config, session).send(huawei_request(["+8613800138000"]))
    assert (caught.value.kind, caught.value.code) == (ErrorKind.PERMANENT, code)


@pytest.mark.parametrize(
    ("scheme", "skew", "code"), [("wsse", 25 * 3600, "E000101"), ("aksk", 1200, "E000045")]
)
async def test_huawei_stale_timestamp(
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
    skew: int,
    code: str,
) -> None:
    async with running(huawei_sim.create_app) as simulator:
        monkeypatch.setattr(simulator.state, "now", lambda: time.time() + skew)
        with pytest.raises(ProviderError) as caught:
            await HuaweiAdapter(huawei_channel(simulator.url, auth_scheme=scheme), session).send(
                huawei_request(["+8613800138000"])
            )
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("outcome", "kind", "code"),
    [
        ("permanent", ErrorKind.PERMANENT, "E000111"),
        ("rate_limited", ErrorKind.RATE_LIMITED, "E000510"),
        ("quota", ErrorKind.RATE_LIMITED, "E000623"),
        ("retryable", ErrorKind.RETRYABLE, "E000000"),
    ],
)
async def test_huawei_whole_request_error_kinds(
    session: aiohttp.ClientSession, outcome: str, kind: ErrorKind, code: str
) -> None:
    async with running(huawei_sim.create_app) as simulator:
        simulator.state.forced.append(outcome)
        with pytest.raises(ProviderError) as caught:
            await HuaweiAdapter(huawei_channel(simulator.url), session).send(
                huawei_request(["+8613800138000"])
            )
    assert (caught.value.kind, caught.value.code) == (kind, code)


async def test_huawei_timeout_is_ambiguous(session: aiohttp.ClientSession) -> None:
    async with running(huawei_sim.create_app) as simulator:
        adapter = HuaweiAdapter(huawei_channel(simulator.url, timeout_ms=200), session)
        with pytest.raises(ProviderError) as caught:
            await adapter.send(huawei_request(["+8613800009005"]))
    assert caught.value.kind is ErrorKind.AMBIGUOUS


# --- Twilio --------------------------------------------------------------------------------

SID = "AC" + "0" * 31 + "1"
TOKEN = "0123456789abcdef0123456789abcdef"  # Twilio auth tokens are ASCII hex


def twilio_channel(url: str, **ext: Any) -> ChannelConfig:
    return ChannelConfig(
        "p-tw", "Twilio", SID, TOKEN, endpoint=url, ext={"from": "+15005550006", **ext}
    )


def twilio_request(phones: list[str]) -> Any:
    return make_request(phones, template="Your code is ${code}", correlation_id="cid-1")


async def test_twilio_one_call_per_phone_with_partial_failure(
    session: aiohttp.ClientSession,
) -> None:
    async with running(
        twilio_sim.create_app, access_key_id=SID, access_key_secret=TOKEN
    ) as simulator:
        adapter = TwilioAdapter(
            twilio_channel(simulator.url, status_callback="https://gw.example.com/cb?t=1"),
            session,
        )
        result = await adapter.send(twilio_request(["+15558675310", "+15558679001"]))
    ok, bad = result.results
    assert ok.accepted and ok.provider_message_id and ok.provider_message_id.startswith("SM")
    assert ok.fee == 1
    assert (bad.accepted, bad.code, bad.error_kind) == (False, "21211", ErrorKind.PERMANENT)
    forms = sorted((r["params"] for r in simulator.requests), key=lambda f: f["To"])
    assert [f["To"] for f in forms] == ["+15558675310", "+15558679001"]
    assert forms[0]["Body"] == "Your code is 1234"
    assert forms[0]["From"] == "+15005550006"
    assert forms[0]["StatusCallback"] == "https://gw.example.com/cb?t=1&smsgate_cid=cid-1"


async def test_twilio_wrong_token_fails_the_whole_batch(session: aiohttp.ClientSession) -> None:
    async with running(
        twilio_sim.create_app, access_key_id=SID, access_key_secret=TOKEN
    ) as simulator:
        config = replace(twilio_channel(simulator.url), access_key_secret="wrong")
        with pytest.raises(ProviderError) as caught:
            await TwilioAdapter(config, session).send(
                twilio_request(["+15558675310", "+15558675311"])
            )
    assert (caught.value.kind, caught.value.code) == (ErrorKind.PERMANENT, "20003")


@pytest.mark.parametrize(
    ("phone", "kind", "code"),
    [
        ("+15558679001", ErrorKind.PERMANENT, "21211"),
        ("+15558679002", ErrorKind.RATE_LIMITED, "20429"),
        ("+15558679004", ErrorKind.RETRYABLE, "20500"),
    ],
)
async def test_twilio_error_kinds(
    session: aiohttp.ClientSession, phone: str, kind: ErrorKind, code: str
) -> None:
    async with running(
        twilio_sim.create_app, access_key_id=SID, access_key_secret=TOKEN
    ) as simulator:
        with pytest.raises(ProviderError) as caught:
            await TwilioAdapter(twilio_channel(simulator.url), session).send(
                twilio_request([phone])
            )
    assert (caught.value.kind, caught.value.code) == (kind, code)


async def test_twilio_timeout_is_ambiguous(session: aiohttp.ClientSession) -> None:
    async with running(
        twilio_sim.create_app, access_key_id=SID, access_key_secret=TOKEN
    ) as simulator:
        adapter = TwilioAdapter(twilio_channel(simulator.url, timeout_ms=200), session)
        with pytest.raises(ProviderError) as caught:
            await adapter.send(twilio_request(["+15558679005"]))
    assert caught.value.kind is ErrorKind.AMBIGUOUS


async def test_twilio_sdk_against_simulator() -> None:
    import asyncio

    client_module = pytest.importorskip("twilio.rest")
    http_module = pytest.importorskip("twilio.http.http_client")
    async with running(
        twilio_sim.create_app, access_key_id=SID, access_key_secret=TOKEN
    ) as simulator:

        class LocalHttpClient(http_module.TwilioHttpClient):  # type: ignore[misc]
            # Point the official client at the simulator instead of api.twilio.com.
            def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                local = url.replace("https://api.twilio.com", simulator.url)
                return super().request(method, local, *args, **kwargs)

        client = client_module.Client(SID, TOKEN, http_client=LocalHttpClient())
        message = await asyncio.to_thread(
            client.messages.create, to="+15558675310", from_="+15005550006", body="héllo"
        )
    assert message.sid.startswith("SM")
    assert message.status == "queued"
    assert simulator.requests[0]["auth_ok"] is True
