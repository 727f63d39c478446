"""Every published signature test vector of shared/providers.md, against smsgate's signing."""

from __future__ import annotations

from smsgate.providers import signing

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

A1_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}

A3_PARAMS = {
    "AccessKeyId": "testid",
    "Action": "SendSms",
    "Format": "JSON",
    "OutId": "abc-1",
    "PhoneNumbers": "13800138000",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_154950909",
    "TemplateParam": '{"code":"1234"}',
    "Timestamp": "2024-01-01T00:00:00Z",
    "Version": "2017-05-25",
}

A5_HEADERS = {
    "host": "dysmsapi.aliyuncs.com",
    "x-acs-action": "SendSms",
    "x-acs-version": "2017-05-25",
    "x-acs-date": "2024-01-01T00:00:00Z",
    "x-acs-signature-nonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
}
A5_QUERY = {k: A3_PARAMS[k] for k in ("OutId", "PhoneNumbers", "SignName", "TemplateCode")} | {
    "TemplateParam": A3_PARAMS["TemplateParam"]
}


def test_a1_v2_get_and_post() -> None:
    assert signing.aliyun_rpc_signature(A1_PARAMS, "testSecret", "GET") == (
        "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    )
    assert signing.aliyun_rpc_signature(A1_PARAMS, "testSecret", "POST") == (
        "Xvhv7fPXrPkLVSnlt0jIr08o8NQ="
    )


def test_a1_signature_param_itself_is_excluded() -> None:
    with_sig = {**A1_PARAMS, "Signature": "whatever"}
    assert signing.aliyun_rpc_signature(with_sig, "testSecret", "GET") == (
        "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    )


def test_a2_v2_describe_regions() -> None:
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert signing.aliyun_rpc_signature(params, "testsecret", "GET") == (
        "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    )


def test_a3_v2_post_sendsms() -> None:
    assert signing.aliyun_rpc_signature(A3_PARAMS, "testsecret", "POST") == (
        "C85chgt8vwCQEZTLDdO/HPMnc70="
    )


def test_a4_v3_doc_example() -> None:
    query = {
        "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
        "RegionId": "cn-shanghai",
    }
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-content-sha256": EMPTY,
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-version": "2014-05-26",
    }
    canonical, _ = signing.aliyun_v3_canonical_request("POST", query, headers, EMPTY)
    assert signing.sha256_hex(canonical.encode()) == (
        "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )
    signature, _ = signing.aliyun_v3_signature("POST", query, headers, EMPTY, "YourAccessKeySecret")
    assert signature == "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"


def test_a5_v3_sendsms_authorization() -> None:
    headers = {**A5_HEADERS, "x-acs-content-sha256": EMPTY, "user-agent": "not signed"}
    auth = signing.aliyun_v3_authorization("POST", A5_QUERY, headers, EMPTY, "testid", "testsecret")
    assert auth == (
        "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
        "x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=e64f41319bdd0b06cd233b03099f507412c6e5d57a24565d5264ca88b43d95ce"
    )


def test_a6_v3_sendbatchsms_with_form_body() -> None:
    from urllib.parse import urlencode

    body = urlencode(
        {
            "PhoneNumberJson": '["13800138000","13900139000"]',
            "SignNameJson": '["阿里云短信测试","阿里云短信测试"]',
            "TemplateParamJson": '[{"code":"1234"},{"code":"5678"}]',
        }
    ).encode()
    body_hash = signing.sha256_hex(body)
    assert body_hash == "03805c3f3142d74486aa65460447e8564d5e07c58c4a9bd874c3a547263f6d48"
    headers = {
        **A5_HEADERS,
        "x-acs-action": "SendBatchSms",
        "x-acs-content-sha256": body_hash,
        "content-type": "application/x-www-form-urlencoded",
    }
    signature, signed = signing.aliyun_v3_signature(
        "POST", {"TemplateCode": "SMS_154950909"}, headers, body_hash, "testsecret"
    )
    assert signed.startswith("content-type;host;")
    assert signature == "9ae710188a4e0102d59c72dfa80542dc431923fc942ae2b3273e7665a33817bd"


T_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
T_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"


def test_t1_tc3_doc_example() -> None:
    body = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    ct = "application/json; charset=utf-8"
    canonical = signing.tc3_canonical_request(ct, "cvm.tencentcloudapi.com", body)
    assert signing.sha256_hex(canonical.encode()) == (
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    assert signing.tc3_signature(T_KEY, 1551113065, "cvm", ct, "cvm.tencentcloudapi.com", body) == (
        "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_t2_sdk_serialised_sendsms() -> None:
    body = (
        b'{"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666", '
        b'"TemplateId": "449739", "SignName": "\\u817e\\u8baf\\u4e91", '
        b'"TemplateParamSet": ["1234", "5"], "SessionContext": "ctx-1"}'
    )
    auth = signing.tc3_authorization(
        T_ID, T_KEY, 1700000000, "sms", "application/json", "sms.tencentcloudapi.com", body
    )
    assert auth == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2023-11-14/sms/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=a5e2d75ed5f3a529b57d642a654e4fafb0b1a4a0b0e492bd3a1ef917d3349fc9"
    )


def test_t3_compact_utf8_body() -> None:
    body = (
        '{"PhoneNumberSet":["+8613800138000"],"SmsSdkAppId":"1400006666","SignName":"腾讯云",'
        '"TemplateId":"449739","TemplateParamSet":["1234","5"],"SessionContext":"ctx-1"}'
    ).encode()
    assert signing.tc3_signature(
        T_KEY,
        1700000000,
        "sms",
        "application/json; charset=utf-8",
        "sms.tencentcloudapi.com",
        body,
    ) == ("22c08ccc00361b22fa5db401add26457aa0d2292a81caffd861152fc59785042")


def test_tc3_date_is_utc_not_local() -> None:
    # 2023-11-14T23:30:00Z is already the 15th in UTC+8; the scope must say the 14th.
    assert signing.tc3_date(1700004600) == "2023-11-14"


def test_q1_qiniu_token() -> None:
    body = b'{"name": "test"}'
    ct = "application/json"
    assert signing.qiniu_token("ak", "sk", "GET", "", ct, {}, body) == (
        "ak:K1DI0goT05yhGizDFE5FiPJxAj4="
    )
    assert signing.qiniu_token("ak", "sk", "POST", "", ct, {"X-Qiniu": "b"}, body) == (
        "ak:0ujEjW_vLRZxebsveBgqa3JyQ-w="
    )


def test_q2_qiniu_sms_message() -> None:
    url = "https://sms.qiniuapi.com/v1/message"
    body = (
        b'{"template_id":"1197638348126572544","mobiles":["13800138000"],'
        b'"parameters":{"code":"1234"}}'
    )
    ct = "application/json"
    dated = {"X-Qiniu-Date": "20240101T000000Z"}
    assert signing.qiniu_token("ak", "sk", "POST", url, ct, dated, body) == (
        "ak:lkOn8CdyjEb5bQgq_djK-7kF9NA="
    )
    assert signing.qiniu_token("ak", "sk", "POST", url, ct, {}, body) == (
        "ak:OlXUk5LIUw7fFxWp04rHSj-qy0A="
    )


H_KEY = "c8RWg3ggEcyd4D3p94bf3Y7x1Ile"
H_SECRET = "q4Ii87BhST9vcs8wvrzN80SfD7Al"


def test_h1_huawei_wsse() -> None:
    digest = signing.huawei_wsse_password_digest(
        "66C92B11FF8A425FB8D4CCFE0ED9ED1F", "2018-02-12T15:30:20Z", H_SECRET
    )
    assert digest == (
        "NmZkZTM0YjJmNzdjMmNlNDdmMWY1OTM3OGRkNGUzNzQxZTk4NGZlY2Y2YzQzMDVmYzQ1NjE3MWIzNjM3ODBlOA=="
    )
    headers = signing.huawei_wsse_headers(
        H_KEY, H_SECRET, "66C92B11FF8A425FB8D4CCFE0ED9ED1F", "2018-02-12T15:30:20Z"
    )
    assert headers["X-WSSE"] == (
        f'UsernameToken Username="{H_KEY}",PasswordDigest="{digest}",'
        'Nonce="66C92B11FF8A425FB8D4CCFE0ED9ED1F",Created="2018-02-12T15:30:20Z"'
    )


def test_h2_huawei_sdk_hmac() -> None:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Host": "smsapi.cn-north-4.myhuaweicloud.com",
        "X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD",
        "X-Sdk-Date": "20240101T000000Z",
    }
    auth = signing.huawei_sdk_hmac_authorization(
        H_KEY, H_SECRET, "POST", "/sms/batchSendSms/v1", [], headers, "UNSIGNED-PAYLOAD"
    )
    assert auth == (
        "SDK-HMAC-SHA256 Access=c8RWg3ggEcyd4D3p94bf3Y7x1Ile, "
        "SignedHeaders=content-type;host;x-sdk-content-sha256;x-sdk-date, "
        "Signature=f0cbf79eaf3ed10b3815066f1e4b580f63a17d9e40aa8bec3e10eef7ddf45023"
    )


def test_w1_twilio() -> None:
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signing.twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert signing.twilio_validate("12345", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signing.twilio_validate("54321", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_w2_twilio_status_callback_with_and_without_port() -> None:
    sid = "0" * 31 + "1"
    params = [
        ("AccountSid", "AC" + sid),
        ("ApiVersion", "2010-04-01"),
        ("From", "+15005550006"),
        ("MessageSid", "SM" + sid),
        ("MessageStatus", "delivered"),
        ("SmsSid", "SM" + sid),
        ("SmsStatus", "delivered"),
        ("To", "+15558675310"),
    ]
    url = "https://gw.example.com/twilio/status?tenant=42"
    expected = "3z13tUXNHvMV2VXJLmP5q0jdyog="
    assert signing.twilio_signature("12345", url, params) == expected
    assert signing.twilio_validate("12345", url, list(reversed(params)), expected)
    assert signing.twilio_validate(
        "12345", "https://gw.example.com:443/twilio/status?tenant=42", params, expected
    )
    tampered = [*params[:-1], ("To", "+15558675311")]
    assert not signing.twilio_validate("12345", url, tampered, expected)
