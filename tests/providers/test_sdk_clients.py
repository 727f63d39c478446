"""The official SDK clients, pointed at our simulators, succeed: the simulators are faithful."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smsgate.providers.simulators import aliyun as aliyun_sim

from .conftest import AK, SECRET, running


async def test_aliyun_sdk_send_sms_against_simulator() -> None:
    dysms = pytest.importorskip("alibabacloud_dysmsapi20170525.client")
    dysms_models = pytest.importorskip("alibabacloud_dysmsapi20170525.models")
    openapi_models = pytest.importorskip("alibabacloud_tea_openapi.models")
    async with running(aliyun_sim.create_app) as simulator:
        config = openapi_models.Config(
            access_key_id=AK,
            access_key_secret=SECRET,
            endpoint=simulator.url.removeprefix("http://"),
            protocol="http",
        )
        client = dysms.Client(config)
        request = dysms_models.SendSmsRequest(
            phone_numbers="13800138000",
            sign_name="阿里云短信测试",
            template_code="SMS_154950909",
            template_param='{"code":"1 2*3~4"}',
            out_id="sdk-1",
        )
        response: Any = await asyncio.to_thread(client.send_sms, request)
    assert response.body.code == "OK"
    assert response.body.biz_id
    (received,) = simulator.requests
    assert received["auth_ok"] is True
    assert received["params"]["SignName"] == "阿里云短信测试"
    assert received["params"]["TemplateParam"] == '{"code":"1 2*3~4"}'
    assert received["headers"]["Authorization"].startswith("ACS3-HMAC-SHA256 ")
