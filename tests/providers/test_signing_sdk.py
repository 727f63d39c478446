"""Our signatures equal the official SDKs' for the same inputs, non-ASCII included.

The SDKs are test oracles only (the `providers-sdk` test extra pins them; CI installs it).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest

from smsgate.providers import signing

# Values chosen to exercise percent-encoding edge cases: CJK, emoji, space, `*`, `~`, `+`, `&`.
TRICKY_VALUES = [
    "阿里云短信测试",
    "验证码 1234*~+&=/",
    "emoji 😀 ü",
    '{"code":"12 34","name":"张三"}',
]


@pytest.mark.parametrize("value", TRICKY_VALUES)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_aliyun_v2_matches_tea_openapi(value: str, method: str) -> None:
    utils = pytest.importorskip("alibabacloud_tea_openapi.utils").Utils
    params = {
        "AccessKeyId": "testid",
        "Action": "SendSms",
        "SignName": value,
        "TemplateParam": json.dumps({"n": value}, ensure_ascii=False),
        "SignatureNonce": "n-1",
        "Timestamp": "2024-01-01T00:00:00Z",
    }
    expected = utils.get_rpcsignature(params, method, "sec ret/密钥")
    assert signing.aliyun_rpc_signature(params, "sec ret/密钥", method) == expected


def _dara_request(query: dict[str, str], headers: dict[str, str]) -> object:
    request_module = pytest.importorskip("darabonba.request")
    req = request_module.DaraRequest()
    req.method = "POST"
    req.pathname = "/"
    req.query = dict(query)
    req.headers = dict(headers)
    return req


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_aliyun_v3_matches_tea_openapi(value: str) -> None:
    utils = pytest.importorskip("alibabacloud_tea_openapi.utils").Utils
    body = urlencode({"SignNameJson": json.dumps([value], ensure_ascii=False)}).encode()
    body_hash = signing.sha256_hex(body)
    query = {"PhoneNumbers": "13800138000", "SignName": value, "TemplateParam": value}
    headers = {
        "host": "dysmsapi.aliyuncs.com",
        "x-acs-action": "SendSms",
        "x-acs-version": "2017-05-25",
        "x-acs-date": "2024-01-01T00:00:00Z",
        "x-acs-signature-nonce": "abc",
        "x-acs-content-sha256": body_hash,
        "content-type": "application/x-www-form-urlencoded",
    }
    expected = utils.get_authorization(
        _dara_request(query, headers), "ACS3-HMAC-SHA256", body_hash, "testid", "secret"
    )
    ours = signing.aliyun_v3_authorization("POST", query, headers, body_hash, "testid", "secret")
    assert ours == expected


@pytest.mark.parametrize("value", TRICKY_VALUES)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_tencent_tc3_matches_sdk(value: str, ensure_ascii: bool) -> None:
    abstract_client = pytest.importorskip("tencentcloud.common.abstract_client")
    body = json.dumps(
        {"SignName": value, "TemplateParamSet": [value]}, ensure_ascii=ensure_ascii
    ).encode()
    ct = "application/json; charset=utf-8"
    req = SimpleNamespace(
        uri="/",
        data=body,
        method="POST",
        header={
            "Content-Type": ct,
            "Host": "sms.tencentcloudapi.com",
            "X-TC-Timestamp": "1700000000",
        },
    )
    expected = abstract_client.AbstractClient._get_tc3_signature(
        None, {}, req, "2023-11-14", "sms", "key"
    )
    ours = signing.tc3_signature("key", 1700000000, "sms", ct, "sms.tencentcloudapi.com", body)
    assert ours == expected


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_qiniu_matches_sdk(value: str) -> None:
    auth_module = pytest.importorskip("qiniu.auth")
    mac = auth_module.QiniuMacAuth("ak", "sk")
    body = json.dumps({"parameters": {"name": value}}, ensure_ascii=False).encode()
    url = "https://sms.qiniuapi.com/v1/message?x=1"
    # Canonical-case names: the Python SDK only recognises the prefix case-sensitively,
    # while HTTP (and Qiniu's Go SDK) treat header names case-insensitively, as we do.
    headers = {"X-Qiniu-Date": "20240101T000000Z", "X-Qiniu-B": "two", "X-Other": "no"}
    expected = mac.token_of_request(
        "POST",
        "sms.qiniuapi.com",
        url,
        mac.qiniu_headers(headers),
        "application/json",
        body,
    )
    ours = signing.qiniu_token("ak", "sk", "POST", url, "application/json", headers, body)
    assert ours == expected


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_huawei_sdk_hmac_matches_sdk(value: str) -> None:
    signer_module = pytest.importorskip("huaweicloudsdkcore.signer.signer")
    sdk_request = pytest.importorskip("huaweicloudsdkcore.sdk_request")
    body = urlencode({"templateParas": json.dumps([value], ensure_ascii=False)})
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Sdk-Date": "20240101T000000Z",
    }
    request = sdk_request.SdkRequest(
        method="POST",
        schema="https",
        host="smsapi.cn-north-4.myhuaweicloud.com",
        resource_path="/sms/batchSendSms/v1",
        query_params=[("q", value)],
        header_params=dict(headers),
        body=body,
    )
    signer = signer_module.Signer(SimpleNamespace(ak="appkey", sk="appsecret"))
    expected = signer.sign(request).header_params["Authorization"]
    ours_headers = {
        **headers,
        "Host": "smsapi.cn-north-4.myhuaweicloud.com",
        "X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD",
    }
    ours = signing.huawei_sdk_hmac_authorization(
        "appkey",
        "appsecret",
        "POST",
        "/sms/batchSendSms/v1",
        [("q", value)],
        ours_headers,
        "UNSIGNED-PAYLOAD",
    )
    assert ours == expected


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_twilio_matches_request_validator(value: str) -> None:
    validator_module = pytest.importorskip("twilio.request_validator")
    validator = validator_module.RequestValidator("token")
    url = "https://gw.example.com/twilio/status?tenant=42"
    params = {"Body": value, "To": "+15558675310", "From": "+15005550006"}
    expected = validator.compute_signature(url, params)
    assert signing.twilio_signature("token", url, params.items()) == expected
    assert validator.validate(url, params, signing.twilio_signature("token", url, params.items()))
    assert signing.twilio_validate(
        "token", "https://gw.example.com:443/twilio/status?tenant=42", params.items(), expected
    )
