"""The send API's request body and per-phone results (DESIGN.md §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from smsgate.db.models import SendStatus
from smsgate.errors import BadRequest
from smsgate.providers.base import ErrorKind


class SendMessageBody(BaseModel):
    """`{"businessNo": "B-000003", "phones": ["+8618200000068"], "params": ["123456"]}`.

    `phones` and `params` may also be one comma-separated string, as the seed's table says.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    businessNo: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    phones: list[StrictStr] | StrictStr
    params: list[StrictStr | StrictInt] | StrictStr | None = None

    def canonical(self) -> str:
        """Compact JSON in field order: equal requests compare equal (Idempotency-Key)."""
        return self.model_dump_json(exclude_none=False)

    def phone_list(self) -> list[str]:
        items = [self.phones] if isinstance(self.phones, str) else self.phones
        return [part for item in items for part in item.split(",")]

    def param_list(self) -> list[str]:
        if self.params is None:
            return []
        if isinstance(self.params, str):
            return self.params.split(",") if self.params else []
        return [str(value) for value in self.params]


def parse_send_body(raw: bytes) -> SendMessageBody:
    if not raw.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        return SendMessageBody.model_validate_json(raw)
    except ValidationError as exc:
        raise BadRequest(f"invalid request body: {describe_validation_error(exc)}") from exc


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:3]:
        if error["type"] == "json_invalid":
            parts.append("the body is not valid JSON")
            continue
        loc = ".".join(str(p) for p in error["loc"] if not _is_union_tag(p)) or "body"
        parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the tried union member (e.g. "list[str]") into the error location.
    return isinstance(part, str) and ("[" in part or part in {"str", "int"})


@dataclass(frozen=True, slots=True)
class PhoneOutcome:
    phone: str
    status: SendStatus
    fee: int
    code: str
    message: str
    provider_message_id: str | None = None
    retry_after_seconds: int | None = None  # phones refused by a per-phone limit
    error_kind: ErrorKind | None = None  # why the provider did not take it (retries, failover)

    def as_json(self) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "status": self.status.name,
            "fee": self.fee,
            "providerMessageId": self.provider_message_id,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class SendOutcome:
    request_id: str
    code: int  # 200, 207, 502 or 504; 429 or 403 when the gateway refused every phone
    msg: str
    results: list[PhoneOutcome]
    retry_after_seconds: int | None = None  # sent as Retry-After with a 429
