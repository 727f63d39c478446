"""Admin API bodies and views: the seed's column names in camelCase."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field, field_validator
from pydantic.alias_generators import to_camel

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=128)]
Remark = Annotated[str | None, Field(default=None, max_length=255)]


class CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=True
    )


def _check_ext_json(value: Any) -> str | None:
    """ext_json is stored as text; accept an object or its JSON text, refuse anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError("extJson must be a JSON object") from exc
        if not isinstance(parsed, dict):
            raise ValueError("extJson must be a JSON object")
        return value
    raise ValueError("extJson must be a JSON object")


class _WithExt(CamelModel):
    ext_json: str | dict[str, Any] | None = None

    @field_validator("ext_json", mode="before")
    @classmethod
    def _ext(cls, value: Any) -> str | None:
        return _check_ext_json(value)


def _as_utc(value: datetime) -> datetime:
    # The database keeps naive UTC; say so on the way out ("...Z" in JSON).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]


class ViewModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)

    id: int
    created_at: UtcDateTime
    updated_at: UtcDateTime


# -- channels ---------------------------------------------------------------------------


class ChannelCreate(_WithExt):
    channel_no: Annotated[str, Field(min_length=1, max_length=32)]
    provider_name: Name
    provider_no: Code
    access_key_id: Annotated[str, Field(max_length=255)] = ""
    access_key_secret: Annotated[str, Field(max_length=1024)] = ""
    endpoint: Annotated[str, Field(max_length=255)] = ""
    sdk_app_id: Annotated[str | None, Field(max_length=64)] = None
    region: Annotated[str | None, Field(max_length=64)] = None
    remark: Remark = None
    status: bool = True


class ChannelUpdate(_WithExt):
    channel_no: Annotated[str | None, Field(min_length=1, max_length=32)] = None
    provider_name: Name | None = None
    access_key_id: Annotated[str | None, Field(max_length=255)] = None
    # Blank or absent keeps the stored secret: it is write-only.
    access_key_secret: Annotated[str | None, Field(max_length=1024)] = None
    endpoint: Annotated[str | None, Field(max_length=255)] = None
    sdk_app_id: Annotated[str | None, Field(max_length=64)] = None
    region: Annotated[str | None, Field(max_length=64)] = None
    remark: Remark = None
    status: bool | None = None


class ChannelView(ViewModel):
    # Only the path is shown: /callbacks/{providerNo}/{token}, to configure at the provider.
    callback_token: Annotated[str | None, Field(exclude=True, repr=False)] = None
    channel_no: str
    provider_name: str
    provider_no: str
    access_key_id: str
    has_secret: bool = False
    endpoint: str
    sdk_app_id: str | None
    region: str | None
    remark: str | None
    ext_json: str | None
    status: bool

    @computed_field  # type: ignore[prop-decorator]
    @property
    def callback_path(self) -> str | None:
        """Where this channel's provider must push delivery reports."""
        if not self.callback_token:
            return None
        return f"/callbacks/{self.provider_no}/{self.callback_token}"


# -- signatures -------------------------------------------------------------------------


class SignCreate(_WithExt):
    sign_name: Name
    provider_no: Code
    provider_name: Annotated[str | None, Field(max_length=128)] = None
    remark: Remark = None
    status: bool = True


class SignUpdate(_WithExt):
    provider_name: Annotated[str | None, Field(max_length=128)] = None
    remark: Remark = None
    status: bool | None = None


class SignView(ViewModel):
    sign_name: str
    provider_no: str
    provider_name: str
    remark: str | None
    ext_json: str | None
    status: bool


# -- templates --------------------------------------------------------------------------


class TemplateCreate(_WithExt):
    template_no: Code
    sign_name: Name
    provider_no: Code
    template_content: Annotated[str, Field(min_length=1, max_length=1000)]
    third_party_template_no: Annotated[str, Field(min_length=1, max_length=128)]
    remark: Remark = None
    status: bool = True


class TemplateUpdate(_WithExt):
    sign_name: Name | None = None
    provider_no: Code | None = None
    template_content: Annotated[str | None, Field(min_length=1, max_length=1000)] = None
    third_party_template_no: Annotated[str | None, Field(min_length=1, max_length=128)] = None
    remark: Remark = None
    status: bool | None = None


class TemplateView(ViewModel):
    template_no: str
    sign_name: str
    provider_no: str
    template_content: str
    third_party_template_no: str
    remark: str | None
    ext_json: str | None
    status: bool


# -- apps -------------------------------------------------------------------------------


def _check_callback_url(value: str | None) -> str | None:
    """An absolute http(s) URL with a host; blank removes the callback (docs/webhooks.md)."""
    if value is None or not value.strip():
        return None
    parsed = urlsplit(value)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise ValueError("callbackUrl must be an absolute http:// or https:// URL")
    if parsed.username or parsed.password:
        raise ValueError("callbackUrl must not carry credentials (the POSTs are signed)")
    return value


CallbackUrl = Annotated[str | None, Field(max_length=512), AfterValidator(_check_callback_url)]


class AppCreate(_WithExt):
    app_no: Code | None = None
    app_name: Name
    available_number: Annotated[int, Field(ge=0)] = 0
    current_limiting: Annotated[int, Field(ge=0)] = 0
    remark: Remark = None
    status: bool = True
    callback_url: CallbackUrl = None


class AppUpdate(_WithExt):
    app_name: Name | None = None
    available_number: Annotated[int | None, Field(ge=0)] = None
    current_limiting: Annotated[int | None, Field(ge=0)] = None
    use_number: Annotated[int | None, Field(ge=0)] = None
    remark: Remark = None
    status: bool | None = None
    # Blank or null removes the callback; absent keeps it.
    callback_url: CallbackUrl = None


class AppView(ViewModel):
    app_no: str
    app_name: str
    available_number: int
    current_limiting: int
    use_number: int
    remark: str | None
    ext_json: str | None
    status: bool
    callback_url: str | None = None


class WebhookSecretView(BaseModel):
    """An app's webhook signing secret: only from the admin-only reveal and rotate calls."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    app_no: str
    webhook_secret: str


class AppKeyView(BaseModel):
    """The only place an app key ever appears: once, at creation or rotation."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    app_no: str
    app_key: str
    app: AppView


# -- businesses -------------------------------------------------------------------------


PhoneLimit = Annotated[int | None, Field(ge=0, le=1_000_000)]


class _AntiAbuse(_WithExt):
    """Per-phone limits and verification-code settings (docs/anti-abuse.md).

    A NULL limit takes the default: 1/5/10 per minute/hour/day for verification businesses,
    none otherwise; 0 switches that window off.
    """

    phone_limit_minute: PhoneLimit = None
    phone_limit_hour: PhoneLimit = None
    phone_limit_day: PhoneLimit = None
    code_length: Annotated[int | None, Field(ge=1, le=64)] = None
    code_alphabet: Annotated[str | None, Field(min_length=2, max_length=64)] = None
    code_ttl_seconds: Annotated[int | None, Field(ge=1)] = None


class BusinessCreate(_AntiAbuse):
    business_no: Code | None = None
    business_name: Name
    app_no: Code
    template_no: Code
    business_desc: Remark = None
    remark: Remark = None
    status: bool = True
    is_verification: bool = False


class BusinessUpdate(_AntiAbuse):
    business_name: Name | None = None
    app_no: Code | None = None
    template_no: Code | None = None
    business_desc: Remark = None
    remark: Remark = None
    status: bool | None = None
    is_verification: bool | None = None


class BusinessView(ViewModel):
    business_no: str
    business_name: str
    app_no: str
    template_no: str
    business_desc: str | None
    remark: str | None
    ext_json: str | None
    status: bool
    is_verification: bool
    phone_limit_minute: int | None
    phone_limit_hour: int | None
    phone_limit_day: int | None
    code_length: int | None
    code_alphabet: str | None
    code_ttl_seconds: int | None


class BlockCreate(CamelModel):
    phone: Annotated[str, Field(min_length=2, max_length=32)]
    is_prefix: bool = False
    app_no: Code | None = None  # None: blocked for every app
    reason: Annotated[str, Field(max_length=255)] = ""


class Page(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    items: list[Any]
    total: int
    page: int
    page_size: int
