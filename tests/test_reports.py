"""Delivery reports: each provider's push format, authentication, matching, early reports."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from conftest import Stack, make_world, run_sql
from smsgate.crypto import SecretBox
from smsgate.db.models import SendStatus
from smsgate.db.session import create_engine
from smsgate.providers import signing
from smsgate.reports.parsers import parse_aliyun, parse_huawei, parse_qiniu, parse_tencent
from smsgate.reports.service import ReportService
from test_admin_api import ADMIN, add_user, login

PHONE = "+8613800138000"


async def add_channel(stack: Stack, channel_no: str, secret: str = "") -> tuple[Any, str, str]:
    """A channel of the given provider type plus one SUBMITTED send record on it."""
    settings = stack.settings()
    provider_no = f"{channel_no.lower()}-{secrets.token_hex(3)}"
    token = secrets.token_urlsafe(16)
    await run_sql(
        settings,
        "INSERT INTO sms_service_provider_config (channel_no, provider_name, provider_no,"
        " access_key_id, access_key_secret, endpoint, status, callback_token, created_at,"
        " updated_at) VALUES (:c, 'x', :p, 'ak', :s, '', 1, :t, CURRENT_TIMESTAMP,"
        " CURRENT_TIMESTAMP)",
        c=channel_no,
        p=provider_no,
        s=secret,
        t=token,
    )
    return settings, provider_no, token


async def add_record(
    settings: Any,
    provider_no: str,
    *,
    status: SendStatus = SendStatus.SUBMITTED,
    message_id: str | None = "msg-1",
    phone: str = PHONE,
    request_id: str | None = None,
) -> tuple[str, int]:
    request_id = request_id or str(uuid.uuid4())
    await run_sql(
        settings,
        "INSERT INTO sms_send_log (request_id, app_no, business_no, template_no, provider_no,"
        " status, fee, phone_number, message, code, content, provider_message_id, created_at,"
        " updated_at) VALUES (:r, 'A', 'B', 'T', :p, :st, 1, :ph, 'OK', 'OK', 'hi', :m,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        r=request_id,
        p=provider_no,
        st=int(status),
        ph=phone,
        m=message_id,
    )
    [(record_id,)] = await run_sql(
        settings,
        "SELECT id FROM sms_send_log WHERE request_id = :r AND phone_number = :ph",
        r=request_id,
        ph=phone,
    )
    return request_id, int(record_id)


async def pending_reports(settings: Any, provider_no: str) -> int:
    [(count,)] = await run_sql(
        settings, "SELECT COUNT(*) FROM sms_pending_report WHERE provider_no = :p", p=provider_no
    )
    return int(count)


async def record(settings: Any, record_id: int) -> Any:
    [row] = await run_sql(
        settings,
        "SELECT status, report_code, report_message, delivered_at, reported_at"
        " FROM sms_send_log WHERE id = :i",
        i=record_id,
    )
    return row


async def apply_pending(settings: Any) -> int:
    """One pass of the sweeper that `serve` runs every few seconds. Its count covers the
    whole database (and the app's own sweeper may have applied a report first): tests look
    at their record and their pending reports instead."""
    engine = create_engine(settings)
    try:
        return await ReportService(engine, SecretBox(None), 0).apply_pending()
    finally:
        await engine.dispose()


def aliyun_report(biz_id: str, out_id: str, success: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "phone_number": "13800138000",
            "send_time": "2026-11-27 10:00:00",
            "report_time": "2026-11-27 10:00:05",
            "success": success,
            "err_code": "DELIVERED" if success else "MK:0001",
            "err_msg": "用户接收成功" if success else "failed",
            "sms_size": "1",
            "biz_id": biz_id,
            "out_id": out_id,
        }
    ]


async def test_aliyun_report_settles_the_record_once(stack: Stack, client_for: Any) -> None:
    settings, provider_no, token = await add_channel(stack, "AliYun")
    request_id, record_id = await add_record(settings, provider_no, message_id="900619^0")
    url = f"/callbacks/{provider_no}/{token}"
    async with client_for(settings) as client:
        response = await client.post(url, json=aliyun_report("900619^0", request_id))
        assert response.status_code == 200
        assert response.json() == {"code": 0, "msg": "接收成功"}
        row = await record(settings, record_id)
        assert row.status == SendStatus.DELIVERED
        assert row.report_code == "DELIVERED" and row.report_message == "用户接收成功"
        # Delivered at 10:00:05 China time = 02:00:05 UTC.
        assert str(row.delivered_at).startswith("2026-11-27 02:00:05")
        # A duplicate push (providers retry) is acknowledged and changes nothing.
        again = await client.post(url, json=aliyun_report("900619^0", request_id, success=False))
        assert again.status_code == 200
    assert (await record(settings, record_id)).status == SendStatus.DELIVERED


async def test_failed_delivery_and_unknown_record_become_undelivered(
    stack: Stack, client_for: Any
) -> None:
    settings, provider_no, token = await add_channel(stack, "AliYun")
    # An ambiguous send (timeout) is settled by its report, matched by our OutId alone.
    request_id, record_id = await add_record(
        settings, provider_no, status=SendStatus.UNKNOWN, message_id=None
    )
    async with client_for(settings) as client:
        response = await client.post(
            f"/callbacks/{provider_no}/{token}", json=aliyun_report("", request_id, success=False)
        )
    assert response.status_code == 200
    row = await record(settings, record_id)
    assert row.status == SendStatus.UNDELIVERED and row.report_code == "MK:0001"
    assert row.delivered_at is None and row.reported_at is not None


@pytest.mark.parametrize(
    ("token_of", "status"), [("wrong", 404), ("other-channel", 404), ("right", 400)]
)
async def test_callback_authentication_and_format(
    stack: Stack, client_for: Any, token_of: str, status: int
) -> None:
    settings, provider_no, token = await add_channel(stack, "AliYun")
    _, _, other_token = await add_channel(stack, "Tencent")
    path = {
        "wrong": f"/callbacks/{provider_no}/not-the-token",
        "other-channel": f"/callbacks/{provider_no}/{other_token}",
        "right": f"/callbacks/{provider_no}/{token}",
    }[token_of]
    async with client_for(settings) as client:
        response = await client.post(path, content=b'{"not": "an array"}')
    assert response.status_code == status
    assert response.json()["code"] == status


async def test_early_tencent_report_waits_for_its_record(stack: Stack, client_for: Any) -> None:
    """Tencent reports carry only the SerialNo, unknown until the send call returns."""
    settings, provider_no, token = await add_channel(stack, "Tencent")
    body = [
        {
            "user_receive_time": "2026-11-27 08:03:04",
            "nationcode": "86",
            "mobile": "13800138000",
            "report_status": "SUCCESS",
            "errmsg": "DELIVRD",
            "description": "用户短信送达成功",
            "sid": "2640:12345",
        }
    ]
    async with client_for(settings) as client:
        response = await client.post(f"/callbacks/{provider_no}/{token}", json=body)
        assert response.status_code == 200
        assert response.json() == {"result": 0, "errmsg": "OK"}
        assert await pending_reports(settings, provider_no) == 1
        # The send result arrives: the record now has the SerialNo.
        _, record_id = await add_record(settings, provider_no, message_id="2640:12345")
        await apply_pending(settings)
    assert (await record(settings, record_id)).status == SendStatus.DELIVERED
    assert await pending_reports(settings, provider_no) == 0


async def test_report_for_a_record_still_sending_is_applied_after_the_send_result(
    stack: Stack, client_for: Any
) -> None:
    settings, provider_no, token = await add_channel(stack, "Qiniu")
    request_id, record_id = await add_record(
        settings, provider_no, status=SendStatus.SENDING, message_id=None
    )
    body = {
        "items": [
            {"mobile": "13800138000", "message_id": "m-1", "status": "DELIVRD",
             "delivrd_at": 1795000000, "seq": request_id}
        ]
    }  # fmt: skip
    async with client_for(settings) as client:
        assert (
            await client.post(f"/callbacks/{provider_no}/{token}", json=body)
        ).status_code == 200
        assert (await record(settings, record_id)).status == SendStatus.SENDING
        await apply_pending(settings)
        # Still SENDING: the report is kept, not applied.
        assert (await record(settings, record_id)).status == SendStatus.SENDING
        assert await pending_reports(settings, provider_no) == 1
        await run_sql(settings, "UPDATE sms_send_log SET status = 2 WHERE id = :i", i=record_id)
        await apply_pending(settings)
    row = await record(settings, record_id)
    assert row.status == SendStatus.DELIVERED and row.report_code == "DELIVRD"
    assert await pending_reports(settings, provider_no) == 0


async def test_huawei_form_report(stack: Stack, client_for: Any) -> None:
    settings, provider_no, token = await add_channel(stack, "Huawei")
    _, record_id = await add_record(settings, provider_no, message_id="2ea20735_11840135")
    form = {
        "sequence": "1",
        "total": "1",
        "updateTime": "2018-10-31T08:43:41Z",
        "source": "2",
        "smsMsgId": "2ea20735_11840135",
        "status": "UNDELIV",
        "to": PHONE,
    }
    async with client_for(settings) as client:
        response = await client.post(f"/callbacks/{provider_no}/{token}", data=form)
    assert response.status_code == 200 and response.content == b""
    row = await record(settings, record_id)
    assert row.status == SendStatus.UNDELIVERED and row.report_code == "UNDELIV"


async def test_twilio_report_needs_its_signature(stack: Stack, client_for: Any) -> None:
    auth_token = "twilio-auth-token-123"
    settings, provider_no, token = await add_channel(stack, "Twilio", secret=auth_token)
    _, record_id = await add_record(settings, provider_no, message_id="SM" + "0" * 31 + "1")
    form = {
        "MessageSid": "SM" + "0" * 31 + "1",
        "MessageStatus": "delivered",
        "To": PHONE,
        "AccountSid": "AC" + "0" * 32,
    }
    path = f"/callbacks/{provider_no}/{token}"
    good = signing.twilio_signature(auth_token, f"http://gw{path}", sorted(form.items()))
    async with client_for(settings) as client:
        forged = await client.post(path, data=form, headers={"X-Twilio-Signature": "AAAA"})
        assert forged.status_code == 401
        assert (await record(settings, record_id)).status == SendStatus.SUBMITTED
        sent = {**form, "MessageStatus": "sent"}  # not final: acknowledged, nothing changes
        interim = signing.twilio_signature(auth_token, f"http://gw{path}", sorted(sent.items()))
        response = await client.post(path, data=sent, headers={"X-Twilio-Signature": interim})
        assert response.status_code == 200
        assert (await record(settings, record_id)).status == SendStatus.SUBMITTED
        response = await client.post(
            path, content=urlencode(form), headers={
                "X-Twilio-Signature": good, "Content-Type": "application/x-www-form-urlencoded"
            },
        )  # fmt: skip
        assert response.status_code == 200
    assert (await record(settings, record_id)).status == SendStatus.DELIVERED


def test_parsers_read_the_documented_examples() -> None:
    [aliyun] = parse_aliyun(json.dumps(aliyun_report("12345", "67890")).encode(), {})
    assert (aliyun.provider_message_id, aliyun.correlation_id, aliyun.delivered) == (
        "12345",
        "67890",
        True,
    )
    [tencent] = parse_tencent(
        b'[{"user_receive_time":"2015-10-17 08:03:04","nationcode":"86","mobile":"13xxxxxxxxx",'
        b'"report_status":"FAIL","errmsg":"MK:0001","description":"x","sid":"s1"}]',
        {},
    )
    assert (tencent.provider_message_id, tencent.delivered, tencent.code) == (
        "s1",
        False,
        "MK:0001",
    )
    [qiniu] = parse_qiniu(b'{"items":[{"mobile":"138","message_id":"m","status":"FAILED"}]}', {})
    assert not qiniu.delivered and qiniu.code == "FAILED"
    [huawei] = parse_huawei(b"", {"smsMsgId": "x", "status": "ACCEPTD"})
    assert not huawei.final


async def test_channel_view_shows_the_callback_path(stack: Stack, client_for: Any) -> None:
    """The admin API's channel view carries the path to configure at the provider, and
    never the token on its own (docs/delivery-reports.md)."""
    world = await make_world(stack.settings())
    [(row_id, token)] = await run_sql(
        world.settings,
        "SELECT id, callback_token FROM sms_service_provider_config WHERE provider_no = :p",
        p=world.provider_no,
    )
    assert token and len(token) >= 24
    username = f"reports-admin-{secrets.token_hex(3)}"
    await add_user(world.settings, username, "admin")
    async with client_for(world.settings) as client:
        headers = await login(client, username)
        one = await client.get(f"{ADMIN}/channels/{row_id}", headers=headers)
        listed = await client.get(
            f"{ADMIN}/channels", params={"q": world.provider_no}, headers=headers
        )
    assert one.status_code == 200, one.text
    assert one.json()["callbackPath"] == f"/callbacks/{world.provider_no}/{token}"
    assert "callbackToken" not in one.json()
    assert listed.status_code == 200, listed.text
    [item] = [i for i in listed.json()["items"] if i["providerNo"] == world.provider_no]
    assert item["callbackPath"] == f"/callbacks/{world.provider_no}/{token}"
