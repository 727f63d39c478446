"""The six seed tables (names kept from the seed) plus console users."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from smsgate.db.base import Base, BigId, IdTimestampMixin


class SendStatus(enum.IntEnum):
    """Send record status, one integer enum used everywhere (DESIGN.md §3)."""

    QUEUED = 0
    SENDING = 1
    SUBMITTED = 2  # the provider accepted the message
    DELIVERED = 3
    UNDELIVERED = 4  # the provider reported a delivery failure
    FAILED = 5  # rejected before the provider accepted it
    CANCELLED = 6
    UNKNOWN = 7  # ambiguous outcome, e.g. a timeout after the request was written


def _status_column() -> Mapped[bool]:
    return mapped_column(Boolean, nullable=False, default=True, server_default=text("1"))


class ProviderConfig(IdTimestampMixin, Base):
    """sms_service_provider_config: one row per provider account (a "channel")."""

    __tablename__ = "sms_service_provider_config"

    channel_no: Mapped[str] = mapped_column(String(32), nullable=False)
    provider_name: Mapped[str] = mapped_column(String(128), nullable=False)
    provider_no: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    access_key_id: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    # Encrypted at rest (Fernet from SMSGATE_SECRET_KEY) once a secret key is configured.
    access_key_secret: Mapped[str] = mapped_column(Text, nullable=False, default="")
    endpoint: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    sdk_app_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    remark: Mapped[str | None] = mapped_column(String(255))
    ext_json: Mapped[str | None] = mapped_column(Text)
    status: Mapped[bool] = _status_column()
    # Secret path segment of this channel's delivery-report URL /callbacks/{provider_no}/{token}.
    callback_token: Mapped[str | None] = mapped_column(
        String(64), default=lambda: secrets.token_urlsafe(24)
    )


class SignConfig(IdTimestampMixin, Base):
    """sms_sign_config: signatures (【签名】) registered under a provider account."""

    __tablename__ = "sms_sign_config"
    __table_args__ = (UniqueConstraint("provider_no", "sign_name"),)

    sign_name: Mapped[str] = mapped_column(String(64), nullable=False)
    provider_no: Mapped[str] = mapped_column(String(64), nullable=False)
    provider_name: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    remark: Mapped[str | None] = mapped_column(String(255))
    ext_json: Mapped[str | None] = mapped_column(Text)
    status: Mapped[bool] = _status_column()


class TemplateConfig(IdTimestampMixin, Base):
    """sms_template_config: our template number -> the provider's template and content."""

    __tablename__ = "sms_template_config"

    sign_name: Mapped[str] = mapped_column(String(64), nullable=False)
    provider_no: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    template_no: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    template_content: Mapped[str] = mapped_column(Text, nullable=False)
    third_party_template_no: Mapped[str] = mapped_column(String(128), nullable=False)
    remark: Mapped[str | None] = mapped_column(String(255))
    ext_json: Mapped[str | None] = mapped_column(Text)
    status: Mapped[bool] = _status_column()


class AppConfig(IdTimestampMixin, Base):
    """sms_app_config: the systems that call the gateway, with their quota and rate."""

    __tablename__ = "sms_app_config"

    app_no: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    app_name: Mapped[str] = mapped_column(String(128), nullable=False)
    # Quota in billed messages (segments); use_number only moves by atomic UPDATEs.
    available_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Messages accepted per any 60-second window, across all gateway processes.
    current_limiting: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    use_number: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    # SHA-256 hex of the app's API key; the key itself is shown once and never stored.
    app_key_hash: Mapped[str | None] = mapped_column(String(64))
    remark: Mapped[str | None] = mapped_column(String(255))
    ext_json: Mapped[str | None] = mapped_column(Text)
    status: Mapped[bool] = _status_column()
    # Where final send statuses are POSTed (docs/webhooks.md); NULL or '': no webhooks.
    callback_url: Mapped[str | None] = mapped_column(String(512))
    # HMAC-SHA256 key signing those POSTs, sealed like provider secrets; never in a view.
    webhook_secret: Mapped[str | None] = mapped_column(Text)


class BusinessConfig(IdTimestampMixin, Base):
    """sms_business_config: a business scenario, business_no -> app + template."""

    __tablename__ = "sms_business_config"

    app_no: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    business_name: Mapped[str] = mapped_column(String(128), nullable=False)
    business_no: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    template_no: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    business_desc: Mapped[str | None] = mapped_column(String(255))
    remark: Mapped[str | None] = mapped_column(String(255))
    ext_json: Mapped[str | None] = mapped_column(Text)
    status: Mapped[bool] = _status_column()
    # Anti-abuse (docs/anti-abuse.md). A verification-code business (registration, login)
    # gets per-phone limits of 1/5/10 per minute/hour/day unless set; others none.
    is_verification: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("0")
    )
    # Messages to one phone per window; NULL: the default above, 0: no limit for the window.
    phone_limit_minute: Mapped[int | None] = mapped_column(Integer)
    phone_limit_hour: Mapped[int | None] = mapped_column(Integer)
    phone_limit_day: Mapped[int | None] = mapped_column(Integer)
    # Verification codes issued for this business; NULL: 6 digits, valid 300 s.
    code_length: Mapped[int | None] = mapped_column(SmallInteger)
    code_alphabet: Mapped[str | None] = mapped_column(String(64))
    code_ttl_seconds: Mapped[int | None] = mapped_column(Integer)


class BlockEntry(IdTimestampMixin, Base):
    """sms_blocklist: phones or number prefixes that are never sent to (opt-outs, abuse).

    `app_no` NULL blocks for every app; otherwise only for that app. The send path reads
    the whole list from an in-process copy refreshed at most every 2 s.
    """

    __tablename__ = "sms_blocklist"
    __table_args__ = (Index("ix_sms_blocklist_phone", "phone", "app_no"),)

    # E.164 (+8613800138000), or with is_prefix an E.164 prefix (+86170).
    phone: Mapped[str] = mapped_column(String(32), nullable=False)
    is_prefix: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("0")
    )
    app_no: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    # A console user, "provider:<provider_no>" for provider opt-outs, or "api".
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)


class SendLog(IdTimestampMixin, Base):
    """sms_send_log: one row per phone number per send."""

    __tablename__ = "sms_send_log"
    __table_args__ = (
        Index("ix_sms_send_log_phone_created", "phone_number", "created_at"),
        Index("ix_sms_send_log_app_created", "app_no", "created_at"),
        # The queue workers' claim: due QUEUED records, per app (fairness).
        Index("ix_sms_send_log_queue", "status", "app_no", "next_attempt_at"),
        # The webhook dispatcher's scan: pending events in id order.
        Index("ix_sms_send_log_webhook_pending", "webhook_pending", "id"),
    )

    request_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    app_no: Mapped[str] = mapped_column(String(64), nullable=False)
    business_no: Mapped[str] = mapped_column(String(64), nullable=False)
    template_no: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    provider_no: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    status: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    fee: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    phone_number: Mapped[str] = mapped_column(String(32), nullable=False)
    # The provider's (or the gateway's) per-phone response code and message.
    message: Mapped[str] = mapped_column(String(512), nullable=False, default="")
    code: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    content: Mapped[str] = mapped_column(Text, nullable=False)
    params: Mapped[str | None] = mapped_column(Text)  # JSON array of the template params
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    # The raw body the provider answered for the call that carried this phone.
    provider_response: Mapped[str | None] = mapped_column(Text)
    report_code: Mapped[str | None] = mapped_column(String(64))
    report_message: Mapped[str | None] = mapped_column(String(512))
    reported_at: Mapped[datetime | None] = mapped_column(DateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime())
    remark: Mapped[str | None] = mapped_column(String(255))
    ext_json: Mapped[str | None] = mapped_column(Text)
    # The async pipeline (POST /api/v1/messages): a QUEUED record is due at next_attempt_at;
    # a worker claims it (claimed_by = its claim token, claimed_at) and marks dispatched_at
    # just before the provider call, so a worker lost before that point can be re-queued
    # safely, and one lost after it leaves the record UNKNOWN (it may have been sent).
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime())
    attempts: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, default=0, server_default=text("0")
    )
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime())
    # Set by the same UPDATE that makes the record final when its app has a callback URL;
    # cleared by the webhook dispatcher once the event is in sms_webhook_delivery.
    webhook_pending: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=text("0")
    )


class AdminUser(IdTimestampMixin, Base):
    """Console and admin API users; passwords hashed with argon2."""

    __tablename__ = "sms_admin_user"

    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="admin")
    status: Mapped[bool] = _status_column()
    # Tokens carry the generation they were issued in; logging out bumps it, which ends
    # every token and console session of the user issued before.
    token_generation: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )


class AuditLog(IdTimestampMixin, Base):
    """Who changed which configuration, when, and what changed (never a secret's value)."""

    __tablename__ = "sms_audit_log"
    __table_args__ = (Index("ix_sms_audit_log_resource", "resource", "resource_key"),)

    username: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    resource: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_key: Mapped[str] = mapped_column(String(128), nullable=False)
    changes: Mapped[str | None] = mapped_column(Text)  # JSON {field: [old, new]}


class PendingReport(IdTimestampMixin, Base):
    """A delivery report that arrived before its send record could take it.

    Applied by a background sweep once the record has left SENDING (or its provider id is
    known); dropped after 24 hours.
    """

    __tablename__ = "sms_pending_report"
    __table_args__ = (Index("ix_sms_pending_report_message", "provider_no", "provider_message_id"),)

    provider_no: Mapped[str] = mapped_column(String(64), nullable=False)
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    delivered: Mapped[bool] = mapped_column(Boolean, nullable=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    message: Mapped[str] = mapped_column(String(512), nullable=False, default="")
    reported_at: Mapped[datetime | None] = mapped_column(DateTime())


class IdempotencyKey(IdTimestampMixin, Base):
    """An Idempotency-Key claimed by an app: in flight (no response yet) or answered.

    The unique (app_no, idem_key) row is the claim: whichever request inserts it first sends;
    every other request with that key waits for its answer and repeats it.
    """

    __tablename__ = "sms_idempotency_key"
    __table_args__ = (UniqueConstraint("app_no", "idem_key"),)

    app_no: Mapped[str] = mapped_column(String(64), nullable=False)
    idem_key: Mapped[str] = mapped_column(String(128), nullable=False)
    endpoint: Mapped[str] = mapped_column(String(32), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)  # SHA-256 of the body
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    response: Mapped[str | None] = mapped_column(Text)


class WebhookDelivery(IdTimestampMixin, Base):
    """The outbox of app webhooks: one event per final send record, retried until delivered.

    `status` is pending (due at `next_attempt_at`), delivered, or dead (no 2xx within the
    retry window; an admin may replay it). `body` is the exact JSON sent on every attempt.
    """

    __tablename__ = "sms_webhook_delivery"
    __table_args__ = (
        Index("ix_sms_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_sms_webhook_delivery_app", "app_no", "status"),
    )

    app_no: Mapped[str] = mapped_column(String(64), nullable=False)
    # One event per record: the unique key makes a second claim of a record impossible.
    record_id: Mapped[int] = mapped_column(BigId, nullable=False, unique=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    first_attempt_at: Mapped[datetime | None] = mapped_column(DateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime())
    last_error: Mapped[str | None] = mapped_column(String(512))


class BusinessFallback(IdTimestampMixin, Base):
    """sms_business_fallback: a business's fallback templates on other channels, in order.

    Position 1 is tried when the business's own template's channel refused (permanent or
    rate-limited) or is skipped by its circuit breaker; then 2, and so on (docs/failover.md).
    """

    __tablename__ = "sms_business_fallback"
    __table_args__ = (
        UniqueConstraint("business_no", "position", name="uq_sms_business_fallback_position"),
    )

    business_no: Mapped[str] = mapped_column(String(64), nullable=False)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    template_no: Mapped[str] = mapped_column(String(64), nullable=False)


class SendAttempt(IdTimestampMixin, Base):
    """sms_send_attempt: every provider call made for a send record (channel, time, outcome).

    Keyed by (request_id, phone_number) rather than the record id: the sync path writes the
    attempts of one provider call in one bulk insert without reading back record ids.
    """

    __tablename__ = "sms_send_attempt"
    __table_args__ = (Index("ix_sms_send_attempt_record", "request_id", "phone_number"),)

    request_id: Mapped[str] = mapped_column(String(36), nullable=False)
    phone_number: Mapped[str] = mapped_column(String(32), nullable=False)
    attempt: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    provider_no: Mapped[str] = mapped_column(String(64), nullable=False)
    template_no: Mapped[str] = mapped_column(String(64), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    finished_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    status: Mapped[int] = mapped_column(SmallInteger, nullable=False)  # SendStatus
    code: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    message: Mapped[str] = mapped_column(String(512), nullable=False, default="")
