"""Request bodies and answers of the verification-code API."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from smsgate.errors import BadRequest
from smsgate.sending.schemas import describe_validation_error

M = TypeVar("M", bound=BaseModel)


class IssueCodeBody(BaseModel):
    """`{"businessNo": "B-000001", "phone": "+8613800138000"}`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    businessNo: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    phone: Annotated[StrictStr, Field(min_length=1, max_length=32)]


class VerifyCodeBody(BaseModel):
    """`{"businessNo": "B-000001", "phone": "+8613800138000", "code": "123456"}`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    businessNo: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    phone: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    code: Annotated[StrictStr, Field(min_length=1, max_length=64)]


def parse_body(model: type[M], raw: bytes) -> M:
    if not raw.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise BadRequest(f"invalid request body: {describe_validation_error(exc)}") from exc


class VerifyResult(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class IssueOutcome:
    request_id: str
    code: int  # the send's status: 200, or 429/403/502/504 from the send path
    msg: str
    phone: str
    expires_in_seconds: int
    retry_after_seconds: int | None = None

    def data(self) -> dict[str, Any] | None:
        if self.code != 200:
            return None
        return {"phone": self.phone, "expiresInSeconds": self.expires_in_seconds}


@dataclass(frozen=True, slots=True)
class VerifyOutcome:
    result: VerifyResult
    reason: str | None  # for invalid: "wrong_code", "no_code", "too_many_attempts"
    msg: str
    attempts_left: int | None = None

    def data(self) -> dict[str, Any]:
        return {
            "result": self.result.value,
            "reason": self.reason,
            "attemptsLeft": self.attempts_left,
        }
