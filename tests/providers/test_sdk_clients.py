"""The official SDK clients, pointed at our simulators, succeed: the simulators are faithful."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smsgate.providers.simulators import aliyun as aliyun_sim
from smsgate.providers.simulators import tencent as tencent_sim

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


async def test_tencent_sdk_send_sms_against_simulator() -> None:
    credential = pytest.importorskip("tencentcloud.common.credential")
    client_profile = pytest.importorskip("tencentcloud.common.profile.client_profile")
    http_profile = pytest.importorskip("tencentcloud.common.profile.http_profile")
    sms_client = pytest.importorskip("tencentcloud.sms.v20210111.sms_client")
    sms_models = pytest.importorskip("tencentcloud.sms.v20210111.models")
    async with running(tencent_sim.create_app) as simulator:
        profile = client_profile.ClientProfile(
            httpProfile=http_profile.HttpProfile(
                endpoint=simulator.url.removeprefix("http://"), protocol="http"
            )
        )
        client = sms_client.SmsClient(credential.Credential(AK, SECRET), "ap-guangzhou", profile)
        request = sms_models.SendSmsRequest()
        request.PhoneNumberSet = ["+8613800138000", "+8613800009001"]
        request.SmsSdkAppId = "1400006666"
        request.SignName = "腾讯云"
        request.TemplateId = "449739"
        request.TemplateParamSet = ["1234", "5"]
        request.SessionContext = "sdk-ctx"
        response: Any = await asyncio.to_thread(client.SendSms, request)
    ok, bad = response.SendStatusSet
    assert (ok.Code, ok.SessionContext) == ("Ok", "sdk-ctx")
    assert ok.SerialNo.startswith("5000:")
    assert bad.Code == "InvalidParameterValue.IncorrectPhoneNumber"
    assert simulator.requests[0]["auth_ok"] is True


async def test_tencent_sdk_with_wrong_key_gets_auth_failure() -> None:
    credential = pytest.importorskip("tencentcloud.common.credential")
    client_profile = pytest.importorskip("tencentcloud.common.profile.client_profile")
    http_profile = pytest.importorskip("tencentcloud.common.profile.http_profile")
    errors = pytest.importorskip("tencentcloud.common.exception.tencent_cloud_sdk_exception")
    sms_client = pytest.importorskip("tencentcloud.sms.v20210111.sms_client")
    sms_models = pytest.importorskip("tencentcloud.sms.v20210111.models")
    async with running(tencent_sim.create_app) as simulator:
        profile = client_profile.ClientProfile(
            httpProfile=http_profile.HttpProfile(
                endpoint=simulator.url.removeprefix("http://"), protocol="http"
            )
        )
        client = sms_client.SmsClient(credential.Credential(AK, "bad"), "ap-guangzhou", profile)
        request = sms_models.SendSmsRequest()
        request.PhoneNumberSet = ["+8613800138000"]
        request.SmsSdkAppId = "1400006666"
        request.TemplateId = "449739"
        with pytest.raises(errors.TencentCloudSDKException) as caught:
            await asyncio.to_thread(client.SendSms, request)
    assert caught.value.get_code() == "AuthFailure.SignatureFailure"


async def test_aliyun_sdk_query_send_details_against_simulator() -> None:
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
        sent: Any = await asyncio.to_thread(
            client.send_sms,
            dysms_models.SendSmsRequest(
                phone_numbers="13800138000",
                sign_name="阿里云短信测试",
                template_code="SMS_154950909",
                out_id="sdk-2",
            ),
        )
        day = simulator.state.sent[0]["send_date"][:10].replace("-", "")
        details: Any = await asyncio.to_thread(
            client.query_send_details,
            dysms_models.QuerySendDetailsRequest(
                phone_number="13800138000", send_date=day, page_size=10, current_page=1
            ),
        )
    assert sent.body.code == "OK"
    assert details.body.code == "OK"
    (detail,) = details.body.sms_send_detail_dtos.sms_send_detail_dto
    assert (detail.out_id, detail.send_status, detail.err_code) == ("sdk-2", 3, "DELIVERED")
