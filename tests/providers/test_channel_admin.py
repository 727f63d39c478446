"""Channels through the admin API: provider rules when saved, and the connection test
against each provider's simulator on 127.0.0.1."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web

from conftest import Stack
from smsgate.config import Settings
from smsgate.providers.simulators import aliyun as aliyun_sim
from smsgate.providers.simulators import huawei as huawei_sim
from smsgate.providers.simulators import qiniu as qiniu_sim
from smsgate.providers.simulators import tencent as tencent_sim
from smsgate.providers.simulators import twilio as twilio_sim
from smsgate.providers.simulators.base import SimulatorConfig
from test_admin_api import ADMIN, add_user, login

from .conftest import AK, SECRET, RunningSimulator, running

CHANNELS = f"{ADMIN}/channels"


@dataclass
class AdminClient:
    client: httpx.AsyncClient
    admin: dict[str, str]
    settings: Settings

    async def create(self, **body: Any) -> httpx.Response:
        body = {"providerName": "test", "providerNo": f"p-{secrets.token_hex(4)}", **body}
        return await self.client.post(CHANNELS, headers=self.admin, json=body)

    async def test(self, row_id: int, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(f"{CHANNELS}/{row_id}/test", headers=headers or self.admin)


@pytest.fixture
async def admin(stack: Stack, client_for: Any) -> AsyncIterator[AdminClient]:
    # One admin per test; logging in costs a password hash, so tests loop over their cases.
    settings = stack.settings()
    suffix = secrets.token_hex(3)
    await add_user(settings, f"chan-admin-{suffix}", "admin")
    async with client_for(settings) as client:
        yield AdminClient(client, await login(client, f"chan-admin-{suffix}"), settings)


def _creds(**extra: Any) -> dict[str, Any]:
    return {"accessKeyId": AK, "accessKeySecret": SECRET, **extra}


# -- validation when a channel is saved --------------------------------------------------------


INVALID: list[tuple[dict[str, Any], list[str]]] = [
    ({"channelNo": "AliYun"}, ["accessKeyId is required", "accessKeySecret is required"]),
    (
        _creds(channelNo="AliYun", extJson={"signature_version": "v4"}),
        ["extJson.signature_version must be 'v2' or 'v3'"],
    ),
    (_creds(channelNo="AliYun", extJson={"timeout_ms": "5000"}), ["extJson.timeout_ms"]),
    (_creds(channelNo="AliYun", extJson={"timeout_ms": 0}), ["extJson.timeout_ms"]),
    (_creds(channelNo="AliYun", extJson={"connect_timeout_ms": True}), ["connect_timeout_ms"]),
    (_creds(channelNo="AliYun", endpoint="ftp://example.com"), ["endpoint"]),
    (_creds(channelNo="Tencent", region="ap-guangzhou"), ["sdkAppId is required"]),
    (_creds(channelNo="Tencent", sdkAppId="1400006666"), ["region is required"]),
    (
        {"channelNo": "Tencent", "sdkAppId": "1400006666", "region": "ap-guangzhou"},
        ["accessKeyId is required (the SecretId)", "accessKeySecret is required"],
    ),
    ({"channelNo": "Qiniu", "accessKeyId": AK}, ["accessKeySecret is required"]),
    (_creds(channelNo="Qiniu", extJson={"signature_id": 42}), ["extJson.signature_id"]),
    (_creds(channelNo="Huawei"), ["sdkAppId is required"]),
    (
        _creds(channelNo="Huawei", sdkAppId="8824", extJson={"auth_scheme": "basic"}),
        ["extJson.auth_scheme must be 'aksk' or 'wsse'"],
    ),
    (
        _creds(channelNo="Huawei", sdkAppId="8824", extJson={"status_callback": "cb"}),
        ["extJson.status_callback must be an absolute http(s) URL"],
    ),
    (_creds(channelNo="Twilio"), ["extJson.from is required"]),
    (
        _creds(channelNo="Twilio", extJson={"from": "+15005550006", "max_concurrency": 0}),
        ["extJson.max_concurrency must be between 1 and 100"],
    ),
    (
        {
            "channelNo": "Twilio",
            "accessKeyId": "SK123",
            "accessKeySecret": "s",
            "extJson": {"from": "+15005550006"},
        },
        ["extJson.account_sid is required"],
    ),
    ({"channelNo": "Loopback", "extJson": {"error_kind": "sometimes"}}, ["error_kind"]),
    ({"channelNo": "Loopback", "endpoint": "bench.local:9000"}, ["endpoint"]),
]


async def test_saving_a_channel_checks_the_provider_rules(admin: AdminClient) -> None:
    for body, fragments in INVALID:
        provider_no = f"bad-{secrets.token_hex(4)}"
        response = await admin.create(providerNo=provider_no, **body)
        assert response.status_code == 400, (body, response.text)
        message = response.json()["msg"]
        for fragment in fragments:
            assert fragment in message, (body, message)
    listed = await admin.client.get(CHANNELS, headers=admin.admin, params={"q": "bad-"})
    assert listed.json()["total"] == 0  # nothing was stored


VALID: list[dict[str, Any]] = [
    _creds(channelNo="AliYun", extJson={"signature_version": "V2", "timeout_ms": 2500}),
    _creds(channelNo="Tencent", sdkAppId="1400006666", region="ap-guangzhou"),
    _creds(channelNo="Qiniu", endpoint="sms.qiniuapi.com"),
    _creds(channelNo="Huawei", extJson={"sender": "8824110605704", "auth_scheme": "aksk"}),
    _creds(channelNo="Twilio", extJson={"messaging_service_sid": "MG123"}),
    _creds(channelNo="Twilio", sdkAppId="+15005550006"),
    {"channelNo": "Loopback", "extJson": {"latency_ms": 5, "failure_rate": 0.5}},
]


async def test_valid_channels_are_saved(admin: AdminClient) -> None:
    for body in VALID:
        response = await admin.create(**body)
        assert response.status_code == 201, (body, response.text)
        assert response.json()["channelNo"] == body["channelNo"]


async def test_update_keeps_the_stored_secret_and_checks_the_merged_channel(
    admin: AdminClient,
) -> None:
    created = await admin.create(**_creds(channelNo="AliYun"))
    assert created.status_code == 201, created.text
    url = f"{CHANNELS}/{created.json()['id']}"
    # A blank secret keeps the stored one: the channel still has credentials.
    kept = await admin.client.patch(
        url, headers=admin.admin, json={"accessKeySecret": "", "remark": "rotated later"}
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["hasSecret"] is True
    # The rules apply to the channel as it would be stored after the change.
    cleared = await admin.client.patch(url, headers=admin.admin, json={"accessKeyId": ""})
    assert cleared.status_code == 400
    assert "accessKeyId is required" in cleared.json()["msg"]
    bad_ext = await admin.client.patch(
        url, headers=admin.admin, json={"extJson": {"signature_version": "v1"}}
    )
    assert bad_ext.status_code == 400
    assert "extJson.signature_version" in bad_ext.json()["msg"]
    # Changing the type applies the new provider's rules to the stored fields.
    retyped = await admin.client.patch(url, headers=admin.admin, json={"channelNo": "Tencent"})
    assert retyped.status_code == 400
    assert "sdkAppId is required" in retyped.json()["msg"]
    after = await admin.client.get(url, headers=admin.admin)
    assert after.json()["accessKeyId"] == AK and after.json()["remark"] == "rotated later"
    assert after.json()["channelNo"] == "AliYun"


# -- connection test -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderCase:
    simulator: Callable[[SimulatorConfig], web.Application]
    body: dict[str, Any]
    ok_code: str
    auth_error: str  # what the provider answers a wrong secret with
    probe: tuple[str, str]  # method and path of the harmless call
    probe_params: dict[str, Any]  # what it carried (as the simulator parsed it)


CASES = {
    "aliyun-v3": ProviderCase(
        aliyun_sim.create_app,
        {"channelNo": "AliYun"},
        "OK",
        "SignatureDoesNotMatch",
        ("POST", "/"),
        {"Action": "QuerySendDetails", "PageSize": "1"},
    ),
    "aliyun-v2": ProviderCase(
        aliyun_sim.create_app,
        {"channelNo": "AliYun", "extJson": {"signature_version": "v2"}},
        "OK",
        "SignatureDoesNotMatch",
        ("POST", "/"),
        {"Action": "QuerySendDetails", "SignatureMethod": "HMAC-SHA1"},
    ),
    "tencent": ProviderCase(
        tencent_sim.create_app,
        {"channelNo": "Tencent", "sdkAppId": "1400006666", "region": "ap-guangzhou"},
        "MissingParameter.EmptyPhoneNumberSet",
        "AuthFailure.SignatureFailure",
        ("POST", "/"),
        {"PhoneNumberSet": [], "SmsSdkAppId": "1400006666"},
    ),
    "qiniu": ProviderCase(
        qiniu_sim.create_app,
        {"channelNo": "Qiniu"},
        "OK",
        "BadToken",
        ("GET", "/v1/signature"),
        {},
    ),
    "huawei-wsse": ProviderCase(
        huawei_sim.create_app,
        {"channelNo": "Huawei", "sdkAppId": "8824110605704"},
        "E000503",
        "E000101",
        ("POST", "/sms/batchSendSms/v1"),
        {"from": "8824110605704", "to": ""},
    ),
    "huawei-aksk": ProviderCase(
        huawei_sim.create_app,
        {"channelNo": "Huawei", "sdkAppId": "8824110605704", "extJson": {"auth_scheme": "aksk"}},
        "E000503",
        "E000045",
        ("POST", "/sms/batchSendSms/v1"),
        {"from": "8824110605704", "to": ""},
    ),
    "twilio": ProviderCase(
        twilio_sim.create_app,
        {"channelNo": "Twilio", "extJson": {"from": "+15005550006"}},
        "active",
        "20003",
        ("GET", f"/2010-04-01/Accounts/{AK}.json"),
        {},
    ),
}


async def test_connection_test_against_each_simulator(admin: AdminClient) -> None:
    for name, case in CASES.items():
        async with running(case.simulator) as simulator:
            await _check_connection_test(admin, name, case, simulator)
        assert simulator.state.sent == [], name  # no message was accepted for any phone


async def _check_connection_test(
    admin: AdminClient, name: str, case: ProviderCase, simulator: RunningSimulator
) -> None:
    created = await admin.create(**_creds(endpoint=simulator.url, **case.body))
    assert created.status_code == 201, (name, created.text)
    row_id = created.json()["id"]

    good = await admin.test(row_id)
    assert good.status_code == 200, (name, good.text)
    assert good.json()["ok"] is True, (name, good.json())
    assert good.json()["code"] == case.ok_code, name
    [probe] = simulator.requests
    assert probe["auth_ok"] is True, name  # verified exactly as a send would be
    assert probe["answer_code"] == case.ok_code, name
    assert (probe["method"], probe["path"]) == case.probe, name
    received = probe.get("params", {})
    assert {k: received.get(k) for k in case.probe_params} == case.probe_params, name

    wrong = await admin.client.patch(
        f"{CHANNELS}/{row_id}", headers=admin.admin, json={"accessKeySecret": "wrong-secret"}
    )
    assert wrong.status_code == 200, (name, wrong.text)
    bad = await admin.test(row_id)
    assert bad.status_code == 200, (name, bad.text)
    assert bad.json()["ok"] is False, (name, bad.json())
    assert bad.json()["code"] == case.auth_error, (name, bad.json())
    assert bad.json()["message"], name
    assert simulator.requests[-1]["auth_ok"] is False, name


async def test_connection_test_unreachable_loopback_roles_and_missing_rows(
    admin: AdminClient,
) -> None:
    # A port nothing listens on any more: refused, so nothing reached a provider.
    async with running(qiniu_sim.create_app) as simulator:
        url = simulator.url
    created = await admin.create(**_creds(channelNo="Qiniu", endpoint=url))
    refused = await admin.test(created.json()["id"])
    assert refused.status_code == 200
    assert (refused.json()["ok"], refused.json()["code"]) == (False, "CONNECT_FAILED")

    loopback_id = (await admin.create(channelNo="Loopback")).json()["id"]
    loopback = await admin.test(loopback_id)
    assert loopback.status_code == 200
    assert loopback.json() == {
        "ok": True,
        "code": "OK",
        "message": "Loopback has no credentials to check",
    }
    assert (await admin.test(10**9)).status_code == 404
    assert (await admin.client.post(f"{CHANNELS}/{loopback_id}/test")).status_code == 401
    viewer = f"chan-viewer-{secrets.token_hex(3)}"
    await add_user(admin.settings, viewer, "viewer")
    viewer_headers = await login(admin.client, viewer)
    assert (await admin.test(loopback_id, headers=viewer_headers)).status_code == 403
