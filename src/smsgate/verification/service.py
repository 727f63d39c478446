"""Issue verification codes through a business's template and verify them at most once."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from dataclasses import dataclass

from redis.exceptions import RedisError

from smsgate.apps.schemas import AppSnapshot
from smsgate.businesses.schemas import Route
from smsgate.config import Settings
from smsgate.db.models import SendStatus
from smsgate.errors import BadRequest, Forbidden, RateLimited, ServiceUnavailable
from smsgate.limits.base import RateLimiter
from smsgate.sending.phones import PhoneError, normalise_phone
from smsgate.sending.schemas import SendMessageBody
from smsgate.sending.service import SendingService
from smsgate.verification.schemas import IssueOutcome, VerifyOutcome, VerifyResult
from smsgate.verification.store import AttemptStatus, CodeStore

log = logging.getLogger("smsgate.verification")

DEFAULT_LENGTH = 6
DEFAULT_ALPHABET = "0123456789"
DEFAULT_TTL_SECONDS = 300
MAX_TRIES = 5  # a code is burnt after this many wrong tries
LENGTH_RANGE = (4, 12)
TTL_RANGE = (30, 86_400)
_IP_WINDOW_MS = 60_000


@dataclass(frozen=True, slots=True)
class CodeSettings:
    length: int
    alphabet: str
    ttl_seconds: int


def code_settings(
    length: int | None, alphabet: str | None, ttl_seconds: int | None
) -> CodeSettings:
    """A business's code settings with defaults applied; ValueError names a bad one.

    The admin API can call this to refuse bad values before they are stored.
    """
    settings = CodeSettings(
        length if length is not None else DEFAULT_LENGTH,
        alphabet if alphabet else DEFAULT_ALPHABET,
        ttl_seconds if ttl_seconds is not None else DEFAULT_TTL_SECONDS,
    )
    if not LENGTH_RANGE[0] <= settings.length <= LENGTH_RANGE[1]:
        raise ValueError(f"code_length must be {LENGTH_RANGE[0]} to {LENGTH_RANGE[1]}")
    chars = settings.alphabet
    if len(set(chars)) != len(chars) or len(chars) < 2 or any(c.isspace() for c in chars):
        raise ValueError("code_alphabet must have at least 2 distinct non-space characters")
    if not TTL_RANGE[0] <= settings.ttl_seconds <= TTL_RANGE[1]:
        raise ValueError(f"code_ttl_seconds must be {TTL_RANGE[0]} to {TTL_RANGE[1]}")
    return settings


class VerificationService:
    """POST /api/v1/verification-codes and .../verify.

    Only an HMAC-SHA256 of the code is stored, keyed with a key derived from
    SMSGATE_SECRET_KEY and salted per code, so a copy of Redis does not reveal codes.
    """

    def __init__(
        self,
        settings: Settings,
        sending: SendingService,
        store: CodeStore,
        limiter: RateLimiter,
    ) -> None:
        self._settings = settings
        self._sending = sending
        self._store = store
        self._limiter = limiter
        secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
        self._hmac_key = hashlib.sha256(
            b"smsgate verification codes\x00" + secret.encode("utf-8")
        ).digest()

    # -- issuing ---------------------------------------------------------------------------

    async def issue_code(
        self, app: AppSnapshot, business_no: str, raw_phone: str, client_ip: str
    ) -> IssueOutcome:
        await self._limit_ip(
            "issue", client_ip, self._settings.verification_issue_per_ip_per_minute
        )
        resolved = await self._sending.resolve(app, business_no)
        route = resolved.route
        config = self._code_settings(route)
        names = resolved.param_names or []
        if len(names) not in (1, 2):
            raise Forbidden(
                f"template {route.template_no} of business {business_no} takes {len(names)} "
                "param(s); a verification template takes the code and optionally the "
                "minutes it is valid"
            )
        phone = self._phone(raw_phone)
        code = "".join(secrets.choice(config.alphabet) for _ in range(config.length))
        minutes = str(math.ceil(config.ttl_seconds / 60))
        params: list[str | int] = [code, minutes]
        del params[len(names) :]
        body = SendMessageBody(businessNo=business_no, phones=[phone], params=params)
        outcome = await self._sending.send_message(app, body, redact=code)
        [result] = outcome.results
        # Store only a code that may have reached the phone: a refused send keeps the
        # earlier code valid.
        if result.status in (SendStatus.SUBMITTED, SendStatus.UNKNOWN):
            salt = secrets.token_hex(16)
            try:
                await self._store.put(
                    _store_key(business_no, phone),
                    self._hash(salt, business_no, phone, code),
                    salt,
                    config.ttl_seconds * 1000,
                )
            except (RedisError, OSError) as exc:
                raise ServiceUnavailable(
                    "Redis is unavailable; the code was sent but cannot be checked, "
                    "request a new one"
                ) from exc
        if outcome.code == 200:
            msg = f"a verification code was sent to {phone}; it is valid for {config.ttl_seconds} s"
        else:
            # The provider's raw answer may echo the text (Twilio's body does): mask it.
            msg = outcome.msg.replace(code, "*" * len(code))
        return IssueOutcome(
            outcome.request_id,
            outcome.code,
            msg,
            phone,
            config.ttl_seconds,
            outcome.retry_after_seconds,
        )

    # -- verifying ---------------------------------------------------------------------------

    async def verify_code(
        self, app: AppSnapshot, business_no: str, raw_phone: str, code: str, client_ip: str
    ) -> VerifyOutcome:
        await self._limit_ip(
            "verify", client_ip, self._settings.verification_verify_per_ip_per_minute
        )
        resolved = await self._sending.business_route(app, business_no)
        self._code_settings(resolved.route)
        phone = self._phone(raw_phone)
        key = _store_key(business_no, phone)
        try:
            attempt = await self._store.begin_attempt(key, MAX_TRIES)
            if attempt.status is not AttemptStatus.COUNTED:
                return _unusable(attempt.status)
            candidate = self._hash(attempt.salt, business_no, phone, code.strip())
            if hmac.compare_digest(candidate, attempt.code_hash):
                if await self._store.consume(key, attempt.code_hash):
                    return VerifyOutcome(VerifyResult.VALID, None, "the code is valid")
                return VerifyOutcome(VerifyResult.INVALID, "no_code", "the code was already used")
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("Redis is unavailable; the code was not checked") from exc
        left = MAX_TRIES - attempt.tries
        return VerifyOutcome(
            VerifyResult.INVALID,
            "wrong_code",
            f"wrong code; {left} tries left" if left else "wrong code; request a new code",
            attempts_left=left,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _code_settings(self, route: Route) -> CodeSettings:
        if not route.is_verification:
            raise Forbidden(
                f"business {route.business_no} is not a verification-code business "
                "(is_verification)"
            )
        try:
            return code_settings(route.code_length, route.code_alphabet, route.code_ttl_seconds)
        except ValueError as exc:
            raise Forbidden(f"business {route.business_no}: {exc}") from exc

    def _phone(self, raw_phone: str) -> str:
        try:
            return normalise_phone(raw_phone, self._settings.default_region)
        except PhoneError as exc:
            raise BadRequest(f"phone: {exc}") from exc

    def _hash(self, salt: str, business_no: str, phone: str, code: str) -> str:
        message = "\x00".join((salt, business_no, phone, code)).encode("utf-8")
        return hmac.new(self._hmac_key, message, hashlib.sha256).hexdigest()

    async def _limit_ip(self, action: str, client_ip: str, per_minute: int) -> None:
        if per_minute <= 0:
            return
        try:
            decision = await self._limiter.acquire(
                f"ip:verification-{action}:{client_ip}", 1, per_minute, _IP_WINDOW_MS
            )
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable("Redis is unavailable; nothing was done") from exc
        if not decision.allowed:
            retry = max(1, math.ceil(decision.retry_after_ms / 1000))
            raise RateLimited(
                f"{client_ip} may make {per_minute} verification-code {action} requests per "
                f"minute; retry after {retry} s",
                retry,
            )


def _store_key(business_no: str, phone: str) -> str:
    return f"{business_no}:{phone}"


def _unusable(status: AttemptStatus) -> VerifyOutcome:
    if status is AttemptStatus.EXPIRED:
        return VerifyOutcome(VerifyResult.EXPIRED, None, "the code has expired; request a new one")
    if status is AttemptStatus.NO_TRIES_LEFT:
        return VerifyOutcome(
            VerifyResult.INVALID,
            "too_many_attempts",
            f"the code was burnt after {MAX_TRIES} wrong tries; request a new one",
            attempts_left=0,
        )
    return VerifyOutcome(
        VerifyResult.INVALID, "no_code", "no code is pending for this phone; request one"
    )
