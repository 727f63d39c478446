"""The resolved chain behind one business number, as the send path caches it."""

from __future__ import annotations

from dataclasses import dataclass

from smsgate.limits.phones import PhoneWindow
from smsgate.providers.base import ChannelConfig


@dataclass(frozen=True, slots=True)
class Route:
    """business -> template -> signature -> channel; None where a link is missing."""

    business_no: str
    business_enabled: bool
    app_no: str
    template_no: str
    template_enabled: bool | None  # None: the template does not exist
    template_content: str
    third_party_template_no: str
    sign_name: str
    sign_enabled: bool | None  # None: the signature is not registered on the channel
    provider_no: str
    channel_enabled: bool | None  # None: the channel does not exist
    channel: ChannelConfig | None
    # Anti-abuse settings of the business (docs/anti-abuse.md), defaults already applied
    # to the windows; the code settings stay as stored (None: the default).
    is_verification: bool = False
    phone_windows: tuple[PhoneWindow, ...] = ()
    code_length: int | None = None
    code_alphabet: str | None = None
    code_ttl_seconds: int | None = None
