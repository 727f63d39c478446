"""TencentAdapter against the Tencent simulator, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from smsgate.providers.base import ChannelConfig, ErrorKind, ProviderError
from smsgate.providers.simulators import tencent as sim
from smsgate.providers.tencent import TencentAdapter

from .conftest import AK, SECRET, make_request, running


def channel(url: str, **ext: Any) -> ChannelConfig:
    return ChannelConfig(
        "p-tc",
        "Tencent",
        AK,
        SECRET,
        endpoint=url,
        sdk_app_id="1400006666",
        region="ap-guangzhou",
        ext=ext,
    )


def tencent_request(phones: list[str], **kwargs: Any) -> Any:
    return make_request(
        phones,
        params=("1234", "5"),
        names=("1", "2"),
        template="验证码{1}, {2}分钟内有效",
        sign_name="腾讯云",
        template_id="449739",
        **kwargs,
    )


async def test_send_success_per_phone(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        adapter = TencentAdapter(channel(simulator.url, extend_code="12"), session)
        result = await adapter.send(
            tencent_request(["+8613800138000", "+8613900139000"], correlation_id="req-7")
        )
    assert [(r.phone, r.accepted, r.code, r.fee) for r in result.results] == [
        ("+8613800138000", True, "Ok", 1),
        ("+8613900139000", True, "Ok", 1),
    ]
    ids = [r.provider_message_id for r in result.results]
    assert all(i and i.startswith("5000:") for i in ids) and len(set(ids)) == 2
    (received,) = simulator.requests
    assert received["auth_ok"] is True
    assert received["headers"]["X-TC-Region"] == "ap-guangzhou"
    assert received["params"] == {
        "PhoneNumberSet": ["+8613800138000", "+8613900139000"],
        "SmsSdkAppId": "1400006666",
        "SignName": "腾讯云",
        "TemplateId": "449739",
        "TemplateParamSet": ["1234", "5"],
        "SessionContext": "req-7",
        "ExtendCode": "12",
    }


async def test_partial_failure_keeps_each_phones_code(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        result = await TencentAdapter(channel(simulator.url), session).send(
            tencent_request(["+8613800138000", "+8613800009001", "+8613800009002"])
        )
    ok, bad, limited = result.results
    assert ok.accepted and ok.error_kind is None
    assert (bad.accepted, bad.code, bad.error_kind) == (
        False,
        "InvalidParameterValue.IncorrectPhoneNumber",
        ErrorKind.PERMANENT,
    )
    assert bad.provider_message_id is None and bad.fee is None
    assert (limited.code, limited.error_kind) == (
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        ErrorKind.RATE_LIMITED,
    )


async def test_wrong_secret_is_signature_failure(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        config = replace(channel(simulator.url), access_key_secret="wrong")
        with pytest.raises(ProviderError) as caught:
            await TencentAdapter(config, session).send(tencent_request(["+8613800138000"]))
    assert (caught.value.kind, caught.value.code) == (
        ErrorKind.PERMANENT,
        "AuthFailure.SignatureFailure",
    )


async def test_stale_clock_is_signature_expire(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(sim.create_app) as simulator:
        monkeypatch.setattr(simulator.state, "now", lambda: time.time() + 600)
        with pytest.raises(ProviderError) as caught:
            await TencentAdapter(channel(simulator.url), session).send(
                tencent_request(["+8613800138000"])
            )
    assert caught.value.code == "AuthFailure.SignatureExpire"
    assert caught.value.kind is ErrorKind.PERMANENT


@pytest.mark.parametrize(
    ("outcome", "kind", "code"),
    [
        ("permanent", ErrorKind.PERMANENT, "FailedOperation.TemplateIncorrectOrUnapproved"),
        ("rate_limited", ErrorKind.RATE_LIMITED, "RequestLimitExceeded"),
        ("quota", ErrorKind.RATE_LIMITED, "LimitExceeded.AppDailyLimit"),
        ("retryable", ErrorKind.RETRYABLE, "InternalError.OtherError"),
    ],
)
async def test_whole_request_error_kinds(
    session: aiohttp.ClientSession, outcome: str, kind: ErrorKind, code: str
) -> None:
    async with running(sim.create_app) as simulator:
        simulator.state.forced.append(outcome)
        with pytest.raises(ProviderError) as caught:
            await TencentAdapter(channel(simulator.url), session).send(
                tencent_request(["+8613800138000"])
            )
    assert (caught.value.kind, caught.value.code) == (kind, code)
    assert code in caught.value.raw


async def test_timeout_is_ambiguous(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        adapter = TencentAdapter(channel(simulator.url, timeout_ms=200), session)
        with pytest.raises(ProviderError) as caught:
            await adapter.send(tencent_request(["+8613800009005"]))
    assert caught.value.kind is ErrorKind.AMBIGUOUS


async def test_missing_region_is_refused_before_any_call(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        config = replace(channel(simulator.url), region=None)
        with pytest.raises(ProviderError) as caught:
            await TencentAdapter(config, session).send(tencent_request(["+8613800138000"]))
    assert caught.value.code == "CHANNEL_MISCONFIGURED"
    assert simulator.requests == []


async def test_non_ascii_params_are_signed_as_sent(session: aiohttp.ClientSession) -> None:
    async with running(sim.create_app) as simulator:
        result = await TencentAdapter(channel(simulator.url), session).send(
            make_request(
                ["+8613800138000"],
                params=("张三 😀", "5"),
                names=("1", "2"),
                template="{1}{2}",
                sign_name="腾讯云",
            )
        )
    assert result.results[0].accepted
    received = simulator.requests[0]
    assert received["params"]["TemplateParamSet"] == ["张三 😀", "5"]
    assert "张三" in received["body"]  # compact UTF-8, not \\u escapes
