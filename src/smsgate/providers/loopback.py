"""Loopback: a built-in provider that accepts every phone (demo, tests, benchmarks).

Channel `ext_json` settings: `latency_ms` (simulated provider latency), `failure_rate`
(0..1, the share of phones rejected with code `LOOPBACK_REJECTED`), `error_kind`
(`retryable`, `permanent`, `rate_limited` or `ambiguous`: every call fails that way),
`reject_phones` (a list of E.164 numbers always rejected, for deterministic tests).
With an `endpoint`, the batch is POSTed as JSON to that URL and the answer, in the same
shape as the built-in one, is relayed: the benchmark's mock provider speaks it.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any, ClassVar

import aiohttp
import orjson

from smsgate.providers import channel_rules
from smsgate.providers.base import (
    ChannelConfig,
    CredentialCheck,
    ErrorKind,
    FeeScheme,
    PhoneResult,
    ProviderError,
    SendRequest,
    SendResult,
)
from smsgate.providers.http import channel_timeout, classify_http_status, post
from smsgate.sending.fee import count_segments


def validate_channel(draft: channel_rules.ChannelDraft) -> list[channel_rules.ChannelProblem]:
    """No credentials; the ext_json settings must be readable by the constructor below."""
    ext = draft.ext
    problems = [
        *channel_rules.timeouts(ext),
        *channel_rules.number(ext, "latency_ms", minimum=0, maximum=channel_rules.MAX_TIMEOUT_MS),
        *channel_rules.number(ext, "failure_rate", minimum=0, maximum=1),
        *channel_rules.choice(ext, "error_kind", [k.value for k in ErrorKind], ignore_case=False),
    ]
    # The batch is POSTed to the endpoint as given: it must be a whole URL, not a host.
    if draft.endpoint.strip() and "://" not in draft.endpoint:
        problems.append(channel_rules.ChannelProblem("endpoint", "must be an http(s) URL"))
    else:
        problems.extend(channel_rules.endpoint(draft))
    phones = ext.get("reject_phones", [])
    if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
        problems.append(
            channel_rules.ChannelProblem("extJson.reject_phones", "must be a list of numbers")
        )
    return problems


class LoopbackAdapter:
    channel_no: ClassVar[str] = "Loopback"
    fee_scheme: ClassVar[FeeScheme] = FeeScheme.CHINESE
    max_batch_size: ClassVar[int] = 1000

    def __init__(self, config: ChannelConfig, session: aiohttp.ClientSession) -> None:
        self._config = config
        self._session = session
        ext = config.ext
        self._latency_s = float(ext.get("latency_ms", 0)) / 1000
        self._failure_rate = float(ext.get("failure_rate", 0))
        forced = ext.get("error_kind")
        self._forced_kind = ErrorKind(forced) if forced else None
        self._timeout = channel_timeout(ext)
        self._reject = frozenset(str(p) for p in ext.get("reject_phones", ()))

    async def send(self, request: SendRequest) -> SendResult:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        if self._forced_kind is not None:
            raise ProviderError(
                self._forced_kind,
                f"LOOPBACK_{self._forced_kind.name}",
                f"loopback channel configured to fail ({self._forced_kind.value})",
            )
        if self._config.endpoint:
            return await self._send_http(request)
        return self._answer_locally(request)

    async def check_credentials(self) -> CredentialCheck:
        return CredentialCheck(True, "OK", "Loopback has no credentials to check")

    def _answer_locally(self, request: SendRequest) -> SendResult:
        fee = count_segments(request.content, self.fee_scheme, request.sign_name)
        statuses: list[dict[str, Any]] = []
        for phone in request.phones:
            # Not security relevant: the simulated rejection share of a test provider.
            rejected = phone in self._reject or (
                self._failure_rate > 0 and random.random() < self._failure_rate  # noqa: S311
            )
            if rejected:
                statuses.append(
                    {
                        "fee": 0,
                        "message": "rejected by loopback",
                        "code": "LOOPBACK_REJECTED",
                        "phone": phone,
                    }
                )
            else:
                statuses.append(
                    {
                        "fee": fee,
                        "message": "OK",
                        "code": "OK",
                        "phone": phone,
                        "biz_id": uuid.uuid4().hex,
                    }
                )
        raw = orjson.dumps(
            {"sms_send_status": statuses, "request_id": str(uuid.uuid4()).upper()}
        ).decode()
        return SendResult(_parse_statuses(statuses), raw)

    async def _send_http(self, request: SendRequest) -> SendResult:
        body = orjson.dumps(
            {
                "phones": list(request.phones),
                "signName": request.sign_name,
                "templateId": request.template_id,
                "params": list(request.params),
                "content": request.content,
                "outId": request.correlation_id,
            }
        )
        answer = await post(
            self._session,
            self._config.endpoint,
            body,
            {"Content-Type": "application/json"},
            self._timeout,
        )
        if answer.status >= 300:
            raise ProviderError(
                classify_http_status(answer.status),
                f"HTTP_{answer.status}",
                answer.body[:200],
                answer.body,
            )
        try:
            statuses = orjson.loads(answer.body)["sms_send_status"]
            results = _parse_statuses(statuses)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # The request was processed but we cannot tell what happened to each phone.
            raise ProviderError(
                ErrorKind.AMBIGUOUS, "BAD_RESPONSE", "unreadable loopback answer", answer.body
            ) from exc
        return SendResult(results, answer.body)


def _parse_statuses(statuses: list[dict[str, Any]]) -> list[PhoneResult]:
    results = []
    for item in statuses:
        ok = item["code"] == "OK"
        results.append(
            PhoneResult(
                phone=str(item["phone"]),
                accepted=ok,
                code=str(item["code"]),
                message=str(item.get("message", "")),
                provider_message_id=item.get("biz_id"),
                fee=int(item["fee"]) if ok and "fee" in item else None,
                error_kind=None if ok else ErrorKind.PERMANENT,
            )
        )
    return results
