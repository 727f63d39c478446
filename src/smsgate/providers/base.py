"""The provider interface: what every adapter (Aliyun, Tencent, ..., Loopback) implements.

An adapter turns one batch of phones into one (or, for providers without a batch call,
several) signed provider requests and maps the answer to per-phone results. It never
touches the database and gets its pooled aiohttp session injected.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import aiohttp


class ErrorKind(enum.StrEnum):
    """How a failure should be treated by the caller (the sending service, later retries)."""

    RETRYABLE = "retryable"  # nothing was sent; the same channel may be tried again
    PERMANENT = "permanent"  # the provider refused; retrying the same request cannot help
    RATE_LIMITED = "rate_limited"  # the provider throttled us; another channel may be tried
    AMBIGUOUS = "ambiguous"  # the request may have been sent (timeout, reset after writing)


class FeeScheme(enum.StrEnum):
    """How billed segments are counted (DESIGN.md §5)."""

    CHINESE = "chinese"  # 70 characters, 67 per segment when longer, signature included
    GSM = "gsm"  # GSM-7 160/153, UCS-2 70/67 when any character is outside GSM-7


class ProviderError(Exception):
    """A failure of a whole provider call, classified into one of the four kinds."""

    def __init__(
        self,
        kind: ErrorKind,
        code: str,
        message: str,
        raw: str = "",
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(f"{kind.value}: {code}: {message}")
        self.kind = kind
        self.code = code
        self.message = message
        self.raw = raw
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """A provider account (sms_service_provider_config), secret already decrypted."""

    provider_no: str
    channel_no: str
    access_key_id: str
    access_key_secret: str
    endpoint: str = ""
    sdk_app_id: str | None = None
    region: str | None = None
    ext: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print the secret
        return f"ChannelConfig(provider_no={self.provider_no!r}, channel_no={self.channel_no!r})"


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One batch for one provider call."""

    phones: Sequence[str]  # E.164, at most the adapter's max_batch_size
    sign_name: str
    template_id: str  # the provider's template id (third_party_template_no)
    params: Sequence[str]  # in placeholder order (see smsgate.sending.render)
    param_names: Sequence[str]  # the placeholder names, same order, for named providers
    template_content: str
    content: str  # the rendered text, for providers that take text (Twilio, SMPP)
    correlation_id: str  # our id, sent in the provider's echo field (OutId, SessionContext...)


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """What the provider said about one phone of the batch."""

    phone: str
    accepted: bool
    code: str
    message: str
    provider_message_id: str | None = None
    fee: int | None = None  # billed segments when the provider reports them
    error_kind: ErrorKind | None = None  # for a rejected phone


@dataclass(frozen=True, slots=True)
class SendResult:
    results: Sequence[PhoneResult]
    raw: str  # the provider's response body, verbatim


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """The outcome of a harmless signed call made only to test a channel's credentials."""

    ok: bool  # the provider authenticated the call
    code: str  # the provider's own code (or ours for transport failures)
    message: str

    @classmethod
    def failed(cls, error: ProviderError) -> CredentialCheck:
        return cls(False, error.code, error.message)


class ProviderAdapter(Protocol):
    """Implemented by every provider adapter class."""

    channel_no: ClassVar[str]
    fee_scheme: ClassVar[FeeScheme]
    max_batch_size: ClassVar[int]

    async def send(self, request: SendRequest) -> SendResult:
        """Send one batch; raise `ProviderError` when the call as a whole failed."""
        ...

    async def check_credentials(self) -> CredentialCheck:
        """Make one harmless signed call (nothing is sent to any phone) and report whether
        the provider accepted the credentials, with its own code and message."""
        ...


AdapterFactory = Callable[[ChannelConfig, aiohttp.ClientSession], ProviderAdapter]
"""An adapter class: built per channel with the process's pooled HTTP session."""
