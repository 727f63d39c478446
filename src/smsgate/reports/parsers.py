"""Each provider's delivery-report push, parsed into one shape (../shared/providers.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import orjson

CHINA = timezone(timedelta(hours=8))


class ReportFormatError(ValueError):
    """The body is not a report in this provider's format."""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    provider_message_id: str | None
    phone: str  # as the provider wrote it (national, E.164 or masked digits)
    delivered: bool
    code: str
    message: str
    reported_at: datetime | None  # naive UTC
    correlation_id: str | None = None  # our request id, echoed (OutId, seq, extend, cid)
    final: bool = True  # False for intermediate states (Twilio "sent", Huawei ACCEPTD)


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """What the provider expects back when a push was taken."""

    body: bytes
    media_type: str = "application/json"


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ReportFormatError("the body is not JSON") from exc


def _china_time(text: Any) -> datetime | None:
    """`yyyy-MM-dd HH:mm:ss` in China time (Aliyun, Tencent) to naive UTC."""
    if not text:
        return None
    try:
        local = datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        return None
    return local.astimezone(UTC).replace(tzinfo=None)


def _iso_utc(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _list_of_objects(data: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ReportFormatError(f"expected a JSON array of {what} objects")
    return data


def parse_aliyun(body: bytes, _form: Mapping[str, str]) -> list[DeliveryReport]:
    """SmsReport HTTP batch push: a JSON array (several reports per push)."""
    reports = []
    for item in _list_of_objects(_json(body), "SmsReport"):
        reports.append(
            DeliveryReport(
                provider_message_id=str(item.get("biz_id") or "") or None,
                phone=str(item.get("phone_number", "")),
                delivered=item.get("success") in (True, "true", "True"),
                code=str(item.get("err_code", "")),
                message=str(item.get("err_msg", "")),
                reported_at=_china_time(item.get("report_time")),
                correlation_id=str(item.get("out_id") or "") or None,
            )
        )
    return reports


def parse_tencent(body: bytes, _form: Mapping[str, str]) -> list[DeliveryReport]:
    """Status callback: a JSON array; `sid` is the SerialNo the send returned."""
    reports = []
    for item in _list_of_objects(_json(body), "status report"):
        nation = str(item.get("nationcode", "")).lstrip("+")
        mobile = str(item.get("mobile", ""))
        reports.append(
            DeliveryReport(
                provider_message_id=str(item.get("sid") or "") or None,
                phone=f"+{nation}{mobile}" if nation else mobile,
                delivered=str(item.get("report_status", "")).upper() == "SUCCESS",
                code=str(item.get("errmsg", "")),
                message=str(item.get("description", "")),
                reported_at=_china_time(item.get("user_receive_time")),
                correlation_id=str(item.get("ext") or "") or None,
            )
        )
    return reports


def parse_qiniu(body: bytes, _form: Mapping[str, str]) -> list[DeliveryReport]:
    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ReportFormatError('expected {"items": [...]}')
    reports = []
    for item in _list_of_objects(data["items"], "item"):
        at = item.get("delivrd_at")
        reported = None
        if isinstance(at, int | float) and at > 0:
            reported = datetime.fromtimestamp(at, UTC).replace(tzinfo=None)
        status = str(item.get("status", "")).upper()
        reports.append(
            DeliveryReport(
                provider_message_id=str(item.get("message_id") or "") or None,
                phone=str(item.get("mobile", "")),
                delivered=status == "DELIVRD",
                code=status if status == "DELIVRD" else str(item.get("error") or status),
                message=str(item.get("error") or status),
                reported_at=reported,
                correlation_id=str(item.get("seq") or "") or None,
            )
        )
    return reports


# Huawei status values that are not final: the message is still on its way.
_HUAWEI_INTERMEDIATE = frozenset({"ACCEPTD"})


def parse_huawei(body: bytes, form: Mapping[str, str]) -> list[DeliveryReport]:
    """A form post per report: smsMsgId, status (DELIVRD, UNDELIV, ...), extend, to."""
    if "smsMsgId" not in form or "status" not in form:
        raise ReportFormatError("expected a form with smsMsgId and status")
    status = form["status"]
    return [
        DeliveryReport(
            provider_message_id=form["smsMsgId"],
            phone=form.get("to", ""),
            delivered=status == "DELIVRD",
            code=status,
            message=form.get("statusDesc", status),
            reported_at=_iso_utc(form.get("updateTime")),
            correlation_id=form.get("extend") or None,
            final=status not in _HUAWEI_INTERMEDIATE,
        )
    ]


_TWILIO_FINAL = {"delivered": True, "undelivered": False, "failed": False, "read": True}


def parse_twilio(body: bytes, form: Mapping[str, str]) -> list[DeliveryReport]:
    """StatusCallback: a form post per status change; only delivered/undelivered/failed are
    final (queued, sending, sent come first)."""
    if "MessageSid" not in form:
        raise ReportFormatError("expected a form with MessageSid")
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    code = form.get("ErrorCode") or status
    return [
        DeliveryReport(
            provider_message_id=form["MessageSid"],
            phone=form.get("To", ""),
            delivered=_TWILIO_FINAL.get(status, False),
            code=code,
            message=status,
            reported_at=None,
            correlation_id=form.get("smsgate_cid") or None,
            final=status in _TWILIO_FINAL,
        )
    ]


ACKNOWLEDGEMENTS: dict[str, Acknowledgement] = {
    "AliYun": Acknowledgement('{"code":0,"msg":"接收成功"}'.encode()),
    "Tencent": Acknowledgement(b'{"result":0,"errmsg":"OK"}'),
    "Qiniu": Acknowledgement(b"{}"),
    "Huawei": Acknowledgement(b"", "text/plain"),
    "Twilio": Acknowledgement(b"", "text/plain"),
}

Parser = Callable[[bytes, Mapping[str, str]], list[DeliveryReport]]

PARSERS: dict[str, Parser] = {
    "AliYun": parse_aliyun,
    "Tencent": parse_tencent,
    "Qiniu": parse_qiniu,
    "Huawei": parse_huawei,
    "Twilio": parse_twilio,
}


def parse_form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}
