"""What each configuration page shows: list columns and form fields, and form -> schema values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo

from smsgate.management.resources import APPS, BUSINESSES, CHANNELS, SIGNS, TEMPLATES, Resource
from smsgate.providers.registry import ADAPTERS


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str = "text"  # text, password, textarea, number, checkbox, select
    choices: str | None = None  # "channels", "apps", "templates", "signs", "channel_types"
    help: str = ""


@dataclass(frozen=True)
class Page:
    resource: Resource
    title: str
    columns: tuple[tuple[str, str], ...]
    fields: tuple[FormField, ...]


_EXT = FormField("ext_json", "Extra settings (ext_json)", "textarea", help="a JSON object")
_REMARK = FormField("remark", "Remark")
_STATUS = FormField("status", "Enabled", "checkbox")

PAGES: dict[str, Page] = {
    "channels": Page(
        CHANNELS,
        "Channels",
        (
            ("provider_no", "Channel no."),
            ("provider_name", "Name"),
            ("channel_no", "Type"),
            ("access_key_id", "Access key ID"),
            ("has_secret", "Secret set"),
            ("region", "Region"),
            ("status", "Enabled"),
        ),
        (
            FormField("channel_no", "Provider type", "select", "channel_types"),
            FormField("provider_name", "Name"),
            FormField("provider_no", "Channel number (providerNo)", help="unique, e.g. ali-main"),
            FormField("access_key_id", "Access key ID"),
            FormField(
                "access_key_secret",
                "Access key secret",
                "password",
                help="write-only: never shown again; leave blank to keep the stored one",
            ),
            FormField("endpoint", "Endpoint", help="blank: the provider's default"),
            FormField("sdk_app_id", "SDK app id", help="Tencent: required"),
            FormField("region", "Region", help="Tencent: required"),
            _EXT,
            _REMARK,
            _STATUS,
        ),
    ),
    "signs": Page(
        SIGNS,
        "Signatures",
        (
            ("sign_name", "Signature"),
            ("provider_no", "Channel no."),
            ("provider_name", "Channel name"),
            ("remark", "Remark"),
            ("status", "Enabled"),
        ),
        (
            FormField("sign_name", "Signature (签名)"),
            FormField("provider_no", "Channel", "select", "channels"),
            FormField("provider_name", "Channel name", help="blank: the channel's name"),
            _EXT,
            _REMARK,
            _STATUS,
        ),
    ),
    "templates": Page(
        TEMPLATES,
        "Templates",
        (
            ("template_no", "Template no."),
            ("template_content", "Content"),
            ("sign_name", "Signature"),
            ("provider_no", "Channel no."),
            ("third_party_template_no", "Provider template id"),
            ("status", "Enabled"),
        ),
        (
            FormField("template_no", "Template number", help="unique, e.g. T-LOGIN"),
            FormField("provider_no", "Channel", "select", "channels"),
            FormField("sign_name", "Signature", "select", "signs"),
            FormField(
                "template_content",
                "Content",
                "textarea",
                help="placeholders: ${name} (Aliyun style) or {1}, {2} (Tencent style)",
            ),
            FormField("third_party_template_no", "Provider's template id"),
            _EXT,
            _REMARK,
            _STATUS,
        ),
    ),
    "apps": Page(
        APPS,
        "Applications",
        (
            ("app_no", "App no."),
            ("app_name", "Name"),
            ("available_number", "Quota"),
            ("use_number", "Used"),
            ("current_limiting", "Per minute"),
            ("status", "Enabled"),
        ),
        (
            FormField("app_no", "App number", help="blank: generated"),
            FormField("app_name", "Name"),
            FormField("available_number", "Quota (available_number)", "number"),
            FormField("use_number", "Used (use_number)", "number"),
            FormField(
                "current_limiting",
                "Messages per minute (current_limiting)",
                "number",
                None,
                "0: none",
            ),
            FormField(
                "callback_url",
                "Webhook callback URL",
                help="final statuses are POSTed here, signed (see docs/webhooks.md); blank: none",
            ),
            _EXT,
            _REMARK,
            _STATUS,
        ),
    ),
    "businesses": Page(
        BUSINESSES,
        "Businesses",
        (
            ("business_no", "Business no."),
            ("business_name", "Name"),
            ("app_no", "App no."),
            ("template_no", "Template no."),
            ("business_desc", "Description"),
            ("status", "Enabled"),
        ),
        (
            FormField("business_no", "Business number", help="blank: generated"),
            FormField("business_name", "Name"),
            FormField("app_no", "Application", "select", "apps"),
            FormField("template_no", "Template", "select", "templates"),
            FormField("business_desc", "Description"),
            FormField(
                "is_verification",
                "Verification codes",
                "checkbox",
                help="registration/login codes: per-phone defaults 1/min, 5/h, 10/day",
            ),
            FormField(
                "phone_limit_minute",
                "Per phone per minute",
                "number",
                help="blank: default; 0: none",
            ),
            FormField(
                "phone_limit_hour", "Per phone per hour", "number", help="blank: default; 0: none"
            ),
            FormField(
                "phone_limit_day", "Per phone per day", "number", help="blank: default; 0: none"
            ),
            FormField("code_length", "Code length", "number", help="blank: 6"),
            FormField("code_alphabet", "Code alphabet", help="blank: 0123456789"),
            FormField("code_ttl_seconds", "Code lifetime (s)", "number", help="blank: 300"),
            _EXT,
            _REMARK,
            _STATUS,
        ),
    ),
}

CHANNEL_TYPES = sorted(ADAPTERS)


def fields_for(page: Page, creating: bool) -> list[FormField]:
    schema = page.resource.create_schema if creating else page.resource.update_schema
    shown = []
    for field in page.fields:
        if field.name in schema.model_fields or (not creating and field.name in page.resource.key):
            shown.append(field)
    return shown


def form_values(page: Page, form: dict[str, Any], creating: bool) -> dict[str, Any]:
    """Turn submitted text into schema input: blank optional fields mean "not given"."""
    schema = page.resource.create_schema if creating else page.resource.update_schema
    values: dict[str, Any] = {}
    for field in page.fields:
        info: FieldInfo | None = schema.model_fields.get(field.name)
        if info is None:
            continue  # keys are immutable once created; they are shown read-only
        if field.kind == "checkbox":
            values[field.name] = field.name in form
            continue
        raw = str(form.get(field.name, "")).strip()
        if raw:
            values[field.name] = raw
        elif field.name in page.resource.secret_fields or field.kind == "number":
            continue  # blank keeps the stored secret / the current number
        elif not creating:
            # Clearing a text field: "" where the column holds text, None where it is optional.
            create_info = page.resource.create_schema.model_fields.get(field.name)
            if create_info is None or create_info.is_required():
                continue  # a required field cannot be cleared: blank keeps it
            values[field.name] = "" if create_info.default == "" else None
    return values
