"""End to end: POST /api/v1/send-message through each real adapter to its simulator on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

from conftest import Stack, World, free_port, make_world, run_sql
from providers.conftest import AK, SECRET, running
from servers import SMSGATE, assert_listens
from smsgate.db.models import SendStatus
from smsgate.providers.simulators import aliyun as aliyun_sim
from smsgate.providers.simulators import huawei as huawei_sim
from smsgate.providers.simulators import qiniu as qiniu_sim
from smsgate.providers.simulators import tencent as tencent_sim
from smsgate.providers.simulators import twilio as twilio_sim
from smsgate.providers.simulators.base import SimulatorConfig

URL = "/api/v1/send-message"
PHONE = "+8613800138000"
INVALID_PHONE = "+8613800009001"  # the simulators' magic number for "invalid number"
HANGING_PHONE = "+8613800009005"  # the simulators hold their answer back
CALLBACK = "https://gw.example.com/twilio/status?tenant=42"


@dataclass(frozen=True)
class Provider:
    simulator: Callable[[SimulatorConfig], web.Application]
    channel_no: str
    template: str  # in the provider's placeholder style
    # What the simulator must have parsed out of our request, given our request id.
    expected_params: Callable[[str], dict[str, Any]]
    message_id: Callable[[dict[str, Any]], str]  # the provider's id in its raw answer
    permanent_code: str  # what the provider answers for an invalid number
    sdk_app_id: str | None = None
    region: str | None = None
    ext: dict[str, Any] = field(default_factory=dict)


PROVIDERS = {
    "aliyun": Provider(
        aliyun_sim.create_app,
        "AliYun",
        "您的验证码是${code}",
        lambda rid: {
            "Action": "SendSms",
            "PhoneNumbers": "8613800138000",
            "SignName": "smsgate",
            "TemplateCode": "TPL_1",
            "TemplateParam": '{"code":"4321"}',  # named
            "OutId": rid,
        },
        lambda raw: str(raw["BizId"]),
        "isv.MOBILE_NUMBER_ILLEGAL",
    ),
    "tencent": Provider(
        tencent_sim.create_app,
        "Tencent",
        "您的验证码是{1}",
        lambda rid: {
            "PhoneNumberSet": [PHONE],
            "SmsSdkAppId": "1400006666",
            "SignName": "smsgate",
            "TemplateId": "TPL_1",
            "TemplateParamSet": ["4321"],  # positional
            "SessionContext": rid,
        },
        lambda raw: str(raw["Response"]["SendStatusSet"][0]["SerialNo"]),
        "InvalidParameterValue.IncorrectPhoneNumber",
        sdk_app_id="1400006666",
        region="ap-guangzhou",
    ),
    "qiniu": Provider(
        qiniu_sim.create_app,
        "Qiniu",
        "Your code is ${code}",
        lambda rid: {
            "template_id": "TPL_1",
            "mobiles": ["13800138000"],
            "parameters": {"code": "4321"},  # named
            "seq": rid,
        },
        lambda raw: str(raw["job_id"]),
        "InvalidQueryValue",
    ),
    "huawei": Provider(
        huawei_sim.create_app,
        "Huawei",
        "您的验证码是${1}",
        lambda rid: {
            "from": "8824110605704",
            "to": PHONE,
            "templateId": "TPL_1",
            "templateParas": '["4321"]',  # positional, a JSON array string
            "extend": rid,
        },
        lambda raw: str(raw["result"][0]["smsMsgId"]),
        "E200015",
        sdk_app_id="8824110605704",
    ),
    "twilio": Provider(
        twilio_sim.create_app,
        "Twilio",
        "Your code is {1}",
        lambda rid: {"To": PHONE, "From": "+15005550006", "Body": "Your code is 4321"},
        lambda raw: str(raw["sid"]),
        "21211",
        ext={"from": "+15005550006", "status_callback": CALLBACK},
    ),
}


async def provider_world(stack: Stack, provider: Provider, url: str, **ext: Any) -> World:
    return await make_world(
        stack.settings(),
        template_content=provider.template,
        channel_no=provider.channel_no,
        access_key_id=AK,
        access_key_secret=SECRET,
        sdk_app_id=provider.sdk_app_id,
        region=provider.region,
        endpoint=url,
        channel_ext={**provider.ext, **ext},
    )


async def records(world: World, request_id: str) -> list[Any]:
    return await run_sql(
        world.settings,
        "SELECT phone_number, status, code, provider_message_id, provider_response"
        " FROM sms_send_log WHERE request_id = :rid ORDER BY id",
        rid=request_id,
    )


def send_body(world: World, phone: str) -> dict[str, Any]:
    return {"businessNo": world.business_no, "phones": [phone], "params": ["4321"]}


@pytest.mark.parametrize("name", list(PROVIDERS))
async def test_send_reaches_the_provider_signed_and_mapped(
    stack: Stack, client_for: Any, name: str
) -> None:
    provider = PROVIDERS[name]
    async with running(provider.simulator) as simulator:
        world = await provider_world(stack, provider, simulator.url)
        async with client_for(world.settings) as client:
            response = await client.post(URL, json=send_body(world, PHONE), headers=world.auth)
    assert response.status_code == 200, response.text
    payload = response.json()
    request_id = payload["requestId"]

    # The simulator verified our signature and saw our params and correlation id.
    [received] = simulator.requests
    assert received["auth_ok"] is True
    params = received["params"]
    expected = provider.expected_params(request_id)
    assert {k: params.get(k) for k in expected} == expected
    if name == "twilio":  # no echo field: the id rides in the status callback URL
        callback = urlsplit(params["StatusCallback"])
        assert parse_qs(callback.query) == {"tenant": ["42"], "smsgate_cid": [request_id]}

    # `msg` is the provider's raw answer; the record keeps its message id.
    raw = json.loads(payload["msg"])
    message_id = provider.message_id(raw)
    assert message_id
    [row] = await records(world, request_id)
    assert row.status == SendStatus.SUBMITTED
    assert row.provider_message_id == message_id
    assert row.provider_response == payload["msg"]
    assert payload["results"][0]["providerMessageId"] == message_id


@pytest.mark.parametrize("name", list(PROVIDERS))
async def test_provider_refusal_is_a_502_with_its_code(
    stack: Stack, client_for: Any, name: str
) -> None:
    provider = PROVIDERS[name]
    async with running(provider.simulator) as simulator:
        world = await provider_world(stack, provider, simulator.url)
        async with client_for(world.settings) as client:
            response = await client.post(
                URL, json=send_body(world, INVALID_PHONE), headers=world.auth
            )
    assert response.status_code == 502, response.text
    assert provider.permanent_code in response.json()["msg"]
    [row] = await records(world, response.json()["requestId"])
    assert row.status == SendStatus.FAILED
    assert row.code == provider.permanent_code
    assert row.provider_message_id is None
    assert simulator.requests[0]["auth_ok"] is True


@pytest.mark.parametrize("name", list(PROVIDERS))
async def test_provider_timeout_is_a_504_and_unknown(
    stack: Stack, client_for: Any, name: str
) -> None:
    provider = PROVIDERS[name]
    # The simulator holds its answer for 1 s; the channel gives up after 200 ms.
    async with running(provider.simulator) as simulator:
        world = await provider_world(stack, provider, simulator.url, timeout_ms=200)
        async with client_for(world.settings) as client:
            response = await client.post(
                URL, json=send_body(world, HANGING_PHONE), headers=world.auth
            )
        assert len(simulator.requests) == 1  # the request reached the provider
    assert response.status_code == 504, response.text
    [row] = await records(world, response.json()["requestId"])
    assert row.status == SendStatus.UNKNOWN  # it may have been sent: never marked FAILED
    assert row.code == "TIMEOUT"


async def test_twilio_opt_out_blocks_the_phone_for_the_app(stack: Stack, client_for: Any) -> None:
    opted_out = "+8613800009006"  # the Twilio simulator answers 21610 for it
    async with running(twilio_sim.create_app) as simulator:
        world = await provider_world(stack, PROVIDERS["twilio"], simulator.url)
        body = {"businessNo": world.business_no, "phones": [opted_out], "params": ["4321"]}
        async with client_for(world.settings) as client:
            first = await client.post(URL, json=body, headers=world.auth)
            again = await client.post(URL, json=body, headers=world.auth)
        sends = [r for r in simulator.requests if r["path"].endswith("/Messages.json")]
    assert first.json()["results"][0]["code"] == "21610"
    assert again.json()["results"][0]["code"] == "BLOCKED"
    assert len(sends) == 1  # the second send never reached Twilio
    [(created_by,)] = await run_sql(
        world.settings,
        "SELECT created_by FROM sms_blocklist WHERE app_no = :a",
        a=world.app_no,
    )
    assert created_by == f"provider:{world.provider_no}"


async def test_a_long_phone_list_goes_in_provider_sized_batches(
    stack: Stack, client_for: Any
) -> None:
    phones = [f"+86138{n:08d}" for n in range(250)]  # Tencent takes 200 per SendSms
    async with running(tencent_sim.create_app) as simulator:
        world = await provider_world(stack, PROVIDERS["tencent"], simulator.url)
        async with client_for(world.settings) as client:
            sent = await client.post(
                URL,
                json={"businessNo": world.business_no, "phones": phones, "params": ["4321"]},
                headers=world.auth,
            )
        batches = sorted(
            len(r["params"]["PhoneNumberSet"]) for r in simulator.requests if r.get("params")
        )
    assert sent.status_code == 200, sent.text
    assert batches == [50, 200]
    rows = await records(world, sent.json()["requestId"])
    assert len(rows) == 250
    assert all(SendStatus(r.status) is SendStatus.SUBMITTED and r.provider_message_id for r in rows)
    assert len({r.provider_message_id for r in rows}) == 250


async def test_the_simulate_command_serves_a_signing_simulator(
    stack: Stack, client_for: Any
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [SMSGATE, "simulate", "tencent", "--port", str(port), "--latency-ms", "200",
         "--access-key-id", AK, "--access-key-secret", SECRET],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _port_open(port):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        assert_listens(process.pid, port)
        url = f"http://127.0.0.1:{port}"
        good = await provider_world(stack, PROVIDERS["tencent"], url)
        bad = await make_world(
            stack.settings(),
            template_content=PROVIDERS["tencent"].template,
            channel_no="Tencent",
            access_key_id=AK,
            access_key_secret="not the secret",
            sdk_app_id=PROVIDERS["tencent"].sdk_app_id,
            region=PROVIDERS["tencent"].region,
            endpoint=url,
        )
        async with client_for(good.settings) as client:
            started = time.monotonic()
            sent = await client.post(
                URL,
                json={"businessNo": good.business_no, "phones": [PHONE], "params": ["4321"]},
                headers=good.auth,
            )
            took = time.monotonic() - started
            refused = await client.post(
                URL,
                json={"businessNo": bad.business_no, "phones": [PHONE], "params": ["4321"]},
                headers=bad.auth,
            )
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert sent.status_code == 200, sent.text
    assert took >= 0.2  # --latency-ms
    assert "AuthFailure.SignatureFailure" in refused.json()["results"][0]["code"]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
