"""Console sessions (a signed cookie holding the admin token) and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from smsgate.auth.service import TOKEN_TTL_SECONDS

SESSION_COOKIE = "smsgate_session"
LOGIN_CSRF_COOKIE = "smsgate_login_csrf"
COOKIE_PATH = "/admin"


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def set_session(request: Request, response: Response, token: str) -> None:
    # The cookie is the admin API's signed token (HMAC keyed from SMSGATE_SECRET_KEY, with
    # expiry and a password fingerprint), so it needs no server-side session store. Strict
    # SameSite keeps other sites from riding on it; CSRF tokens cover the rest.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=TOKEN_TTL_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def csrf_for_session(secret_key: str, token: str) -> str:
    """A CSRF token bound to the session: useless to anyone without the session cookie."""
    key = hmac.new(secret_key.encode(), b"smsgate console csrf v1", "sha256").digest()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def csrf_matches(expected: str, submitted: object) -> bool:
    return isinstance(submitted, str) and hmac.compare_digest(expected, submitted)


def new_login_csrf() -> str:
    """Before login there is no session: a random value in a cookie and in the form."""
    return secrets.token_urlsafe(24)


def set_login_csrf(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
