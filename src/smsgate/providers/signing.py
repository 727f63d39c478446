"""Request signing for every provider: pure functions of their inputs (no clock, no randomness).

Callers pass the timestamp and nonce, so the same functions serve the adapters (signing),
the simulators (verifying) and the tests (published vectors). Algorithms follow
shared/providers.md; each function names the provider document it implements.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit, urlunsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def percent_encode(value: str) -> str:
    """Aliyun's percentEncode (RFC 3986): only `A-Za-z0-9-_.~` stay; space is %20, `*` %2A."""
    return quote(value, safe="~")


# --- Alibaba Cloud -------------------------------------------------------------------------


def aliyun_rpc_signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """V2 RPC signature, HMAC-SHA1 ("Signature mechanism" of the RPC API docs).

    `params` is every query and form parameter except `Signature` itself.
    """
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )
    # The canonical string is percent-encoded a second time inside the string to sign.
    string_to_sign = f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"
    key = (secret + "&").encode("utf-8")
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _aliyun_v3_signed_headers(
    headers: Mapping[str, str], signed_names: Iterable[str] | None
) -> dict[str, str]:
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    if signed_names is not None:
        # Verifying side: the client chose what to sign (the SDK also signs user-agent).
        return {name: lowered.get(name, "") for name in signed_names}
    # Signing side: host, content-type and every x-acs-* header; others go unsigned.
    return {
        name: value
        for name, value in lowered.items()
        if name in ("host", "content-type") or name.startswith("x-acs-")
    }


def aliyun_v3_canonical_request(
    method: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str,
    path: str = "/",
    signed_names: Iterable[str] | None = None,
) -> tuple[str, str]:
    """The V3 CanonicalRequest and its SignedHeaders list ("V3 request body and signature")."""
    canonical_query = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(query.items())
    )
    signed = _aliyun_v3_signed_headers(headers, signed_names)
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        [method.upper(), path or "/", canonical_query, canonical_headers, signed_headers]
    )
    return f"{canonical_request}\n{payload_sha256}", signed_headers


def aliyun_v3_signature(
    method: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str,
    secret: str,
    path: str = "/",
    signed_names: Iterable[str] | None = None,
) -> tuple[str, str]:
    """(hex signature, SignedHeaders) for ACS3-HMAC-SHA256: no key derivation, no `&`."""
    canonical_request, signed_headers = aliyun_v3_canonical_request(
        method, query, headers, payload_sha256, path, signed_names
    )
    string_to_sign = "ACS3-HMAC-SHA256\n" + sha256_hex(canonical_request.encode("utf-8"))
    signature = _hmac_sha256(secret.encode("utf-8"), string_to_sign).hex()
    return signature, signed_headers


def aliyun_v3_authorization(
    method: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str,
    access_key_id: str,
    secret: str,
    path: str = "/",
) -> str:
    signature, signed_headers = aliyun_v3_signature(
        method, query, headers, payload_sha256, secret, path
    )
    # No spaces after the commas: the V3 doc's exact format.
    return (
        f"ACS3-HMAC-SHA256 Credential={access_key_id},"
        f"SignedHeaders={signed_headers},Signature={signature}"
    )


def aliyun_timestamp(moment: datetime) -> str:
    """UTC `yyyy-MM-ddTHH:mm:ssZ`, the format of both V2 `Timestamp` and V3 `x-acs-date`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Tencent Cloud -------------------------------------------------------------------------


def tc3_date(timestamp: int) -> str:
    # The credential-scope date is the UTC date of the timestamp: a local (UTC+8) date
    # breaks signatures around midnight (TC3-HMAC-SHA256 doc, "Notes").
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def tc3_canonical_request(content_type: str, host: str, body: bytes) -> str:
    return (
        "POST\n/\n\n"
        f"content-type:{content_type}\nhost:{host}\n\n"
        f"content-type;host\n{sha256_hex(body)}"
    )


def tc3_signature(
    secret_key: str, timestamp: int, service: str, content_type: str, host: str, body: bytes
) -> str:
    """TC3-HMAC-SHA256 over a POST to `/` signing content-type and host (API 3.0 signature v3)."""
    date = tc3_date(timestamp)
    canonical_hash = sha256_hex(tc3_canonical_request(content_type, host, body).encode("utf-8"))
    string_to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{canonical_hash}"
    k_date = _hmac_sha256(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac_sha256(k_date, service)
    k_signing = _hmac_sha256(k_service, "tc3_request")
    return _hmac_sha256(k_signing, string_to_sign).hex()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    timestamp: int,
    service: str,
    content_type: str,
    host: str,
    body: bytes,
) -> str:
    signature = tc3_signature(secret_key, timestamp, service, content_type, host, body)
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{tc3_date(timestamp)}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


# --- Qiniu ---------------------------------------------------------------------------------

_QINIU_PREFIX = "X-Qiniu-"


def _canonical_mime_case(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def qiniu_signing_data(
    method: str,
    url: str,
    content_type: str | None,
    headers: Mapping[str, str],
    body: bytes,
    host: str | None = None,
) -> bytes:
    """The byte string a "Qiniu" token signs (Qiniu doc "管理凭证", Qiniu token form)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    data = f"{method.upper()} {target}\nHost: {host if host is not None else parts.netloc}"
    if content_type:
        data += f"\nContent-Type: {content_type}"
    # Only X-Qiniu-* headers with something after the prefix are signed, in canonical case.
    qiniu_headers = sorted(
        (_canonical_mime_case(k), v)
        for k, v in headers.items()
        if len(k) > len(_QINIU_PREFIX) and k.lower().startswith(_QINIU_PREFIX.lower())
    )
    for name, value in qiniu_headers:
        data += f"\n{name}: {value}"
    raw = (data + "\n\n").encode("utf-8")
    if content_type and content_type != "application/octet-stream" and body:
        raw += body
    return raw


def qiniu_token(
    access_key: str,
    secret_key: str,
    method: str,
    url: str,
    content_type: str | None,
    headers: Mapping[str, str],
    body: bytes,
    host: str | None = None,
) -> str:
    """`<AK>:<urlsafe base64 HMAC-SHA1>`, sent as `Authorization: Qiniu <token>`."""
    data = qiniu_signing_data(method, url, content_type, headers, body, host)
    digest = hmac.new(secret_key.encode("utf-8"), data, hashlib.sha1).digest()
    return f"{access_key}:{base64.urlsafe_b64encode(digest).decode('ascii')}"


def qiniu_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- Huawei Cloud --------------------------------------------------------------------------


def huawei_wsse_password_digest(nonce: str, created: str, app_secret: str) -> str:
    """X-WSSE PasswordDigest: Base64 of the *hex string* of SHA-256(Nonce+Created+secret)."""
    hex_digest = sha256_hex((nonce + created + app_secret).encode("utf-8"))
    return base64.b64encode(hex_digest.encode("ascii")).decode("ascii")


def huawei_wsse_headers(app_key: str, app_secret: str, nonce: str, created: str) -> dict[str, str]:
    """The two headers of Huawei MSGSMS "App authentication" (WSSE UsernameToken)."""
    digest = huawei_wsse_password_digest(nonce, created, app_secret)
    return {
        "Authorization": 'WSSE realm="SDP",profile="UsernameToken",type="Appkey"',
        "X-WSSE": (
            f'UsernameToken Username="{app_key}",PasswordDigest="{digest}",'
            f'Nonce="{nonce}",Created="{created}"'
        ),
    }


def huawei_created(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def huawei_sdk_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _huawei_canonical_uri(path: str) -> str:
    encoded = "/".join(quote(segment, safe="~") for segment in path.split("/"))
    # The APIG signer always ends the canonical URI with "/", even for ".../v1".
    return encoded if encoded.endswith("/") else encoded + "/"


def huawei_sdk_hmac_authorization(
    app_key: str,
    app_secret: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_hash: str,
) -> str:
    """SDK-HMAC-SHA256 ("APP authentication" / special AK/SK of Huawei API Gateway).

    `headers` must include `X-Sdk-Date` and `Host`; every header whose name has no `_`
    is signed. `payload_hash` is the hex SHA-256 of the body or the literal
    `UNSIGNED-PAYLOAD` sent in `X-Sdk-Content-Sha256`.
    """
    lowered = {k.lower(): v.strip() for k, v in headers.items() if "_" not in k}
    names = sorted(lowered)
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    signed_headers = ";".join(names)
    canonical_query = "&".join(
        f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query)
    )
    canonical_request = "\n".join(
        [
            method.upper(),
            _huawei_canonical_uri(path),
            canonical_query,
            canonical_headers,
            signed_headers,
            payload_hash,
        ]
    )
    date = lowered["x-sdk-date"]
    string_to_sign = f"SDK-HMAC-SHA256\n{date}\n{sha256_hex(canonical_request.encode('utf-8'))}"
    signature = _hmac_sha256(app_secret.encode("utf-8"), string_to_sign).hex()
    return (
        f"SDK-HMAC-SHA256 Access={app_key}, SignedHeaders={signed_headers}, Signature={signature}"
    )


# --- Twilio --------------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """X-Twilio-Signature ("Webhooks security"): URL + sorted name/value pairs, HMAC-SHA1."""
    data = url
    for name, value in sorted(params):
        data += name + value
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _twilio_url_variants(url: str) -> list[str]:
    # Twilio may sign the URL with or without the default port: accept both forms.
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    variants = [url]
    if default_port is None or parts.hostname is None:
        return variants
    host = parts.hostname
    if parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default_port}")))
    elif parts.port == default_port:
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{host}" if userinfo else host
        variants.append(urlunsplit(parts._replace(netloc=netloc)))
    return variants


def twilio_validate(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str
) -> bool:
    """True when `signature` matches the request (constant-time comparison)."""
    pairs = list(params)
    return any(
        hmac.compare_digest(twilio_signature(auth_token, candidate, pairs), signature)
        for candidate in _twilio_url_variants(url)
    )
