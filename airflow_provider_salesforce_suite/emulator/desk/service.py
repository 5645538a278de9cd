"""The Desk site's runtime state: its store, the rate limiter and how agents authenticate."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from ..errors import SalesforceApiError
from .store import DeskStore

if TYPE_CHECKING:
    from ..state import EmulatorState

DESK_KEY: web.AppKey[DeskService] = web.AppKey("emulator_desk")
#: Desk allowed 60 requests a minute per site by default; the emulator's default is roomier so
#: test suites never trip it unless they ask to (``POST /__emulator__/desk``).
DEFAULT_RATE_LIMIT = 1000
DEFAULT_WINDOW_SECONDS = 60.0
#: OAuth 1.0a requests signed longer ago than this are refused (replays).
MAX_CLOCK_SKEW_SECONDS = 600


def unauthorized() -> SalesforceApiError:
    """Desk's 401 (rendered ``{"message": "Unauthorized"}``)."""
    return SalesforceApiError("UNAUTHORIZED", "Unauthorized", status=401)


@dataclass
class RateLimiter:
    """A fixed window of ``limit`` requests per ``window_seconds``; ``throttle_next`` forces 429s.

    :param limit: requests allowed per window.
    :param window_seconds: the window's length.
    """

    limit: int = DEFAULT_RATE_LIMIT
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    throttle_next: int = 0
    _start: float = 0.0
    _used: int = 0
    throttled: int = 0

    def hit(self) -> tuple[bool, dict[str, str]]:
        """Count one request: ``(allowed, rate-limit headers)``."""
        now = time.monotonic()
        if now - self._start >= self.window_seconds:
            self._start, self._used = now, 0
        reset = max(1, math.ceil(self._start + self.window_seconds - now))
        allowed = self.throttle_next <= 0 and self._used < self.limit
        if self.throttle_next > 0:
            self.throttle_next -= 1
        if allowed:
            self._used += 1
        else:
            self.throttled += 1
        headers = {"X-Rate-Limit-Limit": str(self.limit),
                   "X-Rate-Limit-Remaining": str(max(0, self.limit - self._used)),
                   "X-Rate-Limit-Reset": str(reset)}
        return allowed, headers

    def configure(self, body: dict[str, Any]) -> None:
        """Apply ``{"limit", "window_seconds", "throttle_next"}`` (a new window starts).

        :param body: the admin request's settings.
        """
        self.limit = int(body.get("limit", self.limit))
        self.window_seconds = float(body.get("window_seconds", self.window_seconds))
        self.throttle_next = int(body.get("throttle_next", self.throttle_next))
        self._start, self._used = 0.0, 0

    def to_json(self) -> dict[str, Any]:
        """The settings and counters, for the admin API."""
        return {"limit": self.limit, "window_seconds": self.window_seconds, "throttle_next": self.throttle_next,
                "used": self._used, "throttled": self.throttled}


class DeskService:
    """The emulated Desk site.

    :param state: the emulator state (its config holds the agents' credentials and OAuth tokens).
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store = DeskStore()
        self.limiter = RateLimiter()

    def reset(self) -> None:
        """Wipe Desk data and restore the default rate limit."""
        self.store.reset()
        self.limiter = RateLimiter()

    def authenticate(self, request: web.Request) -> dict[str, Any]:
        """The agent (a ``users`` row) behind a Basic or OAuth 1.0a ``Authorization`` header.

        :param request: the request.
        :raises SalesforceApiError: 401 for missing or wrong credentials.
        """
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            email = self._basic_user(value.strip())
        elif scheme.lower() == "oauth":
            email = self._oauth1_user(request, header)
        else:
            raise unauthorized()
        return self.agent(email)

    def agent(self, email: str) -> dict[str, Any]:
        """The ``users`` row for an agent email (added on first sight of a configured user).

        :param email: the agent's email.
        """
        for user in self.store.all("users"):
            if str(user.get("email", "")).lower() == email.lower():
                return user
        return self.store.insert("users", {"name": email.split("@")[0], "public_name": email.split("@")[0],
                                           "email": email, "level": "agent", "avatar": None})

    def _basic_user(self, value: str) -> str:
        try:
            email, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise unauthorized() from None
        user = self.state.config.user(email)
        if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
            raise unauthorized()
        return user.email or user.username

    def _oauth1_user(self, request: web.Request, header: str) -> str:
        from oauthlib.oauth1.rfc5849 import signature, utils

        try:
            params = dict(utils.parse_authorization_header(header))
        except (ValueError, TypeError):
            raise unauthorized() from None
        token = self.state.config.desk_oauth_token(params.get("oauth_consumer_key"), params.get("oauth_token"))
        if token is None or params.get("oauth_signature_method") != "HMAC-SHA1":
            raise unauthorized()
        try:
            stamp = int(params.get("oauth_timestamp", ""))
        except ValueError:
            raise unauthorized() from None
        if abs(time.time() - stamp) > MAX_CLOCK_SKEW_SECONDS or not params.get("oauth_nonce"):
            raise unauthorized()
        try:  # the raw (still percent-encoded) query is what the client signed
            collected = signature.collect_parameters(uri_query=urlsplit(request.raw_path).query,
                                                     headers={"Authorization": header}, exclude_oauth_signature=True)
            uri = signature.base_string_uri(f"{request.scheme}://{request.host}{urlsplit(request.raw_path).path}")
        except ValueError:
            raise unauthorized() from None
        base = signature.signature_base_string(request.method, uri, signature.normalize_parameters(collected))
        expected = signature.sign_hmac_sha1(base, token.consumer_secret, token.access_token_secret)
        if not hmac.compare_digest(expected, utils.unescape(params.get("oauth_signature", ""))):
            raise unauthorized()
        return token.user


def service_of(request: web.Request) -> DeskService:
    """The Desk service behind a request.

    :param request: the request.
    """
    return request.app[DESK_KEY]
