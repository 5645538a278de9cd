"""Fault injection: make matching requests fail, slow down or lose their connection.

Rules are added through ``POST /__emulator__/faults``. ``count`` makes a rule deterministic
(the next N matching requests fail, then the rule is spent) - what retry tests need;
``rate`` makes it probabilistic (seeded, so a given seed replays the same sequence).

A hit request meets one fate, decided before the handler runs (``before``) or after it
(``after``: the request was carried out and committed, only its reply suffers):

=====================  =======  ==============================================================
rule                   when     what the client sees
=====================  =======  ==============================================================
``status``/``error``   before   Salesforce's error in the API's own format; nothing was done
``body``               before   that raw body (e.g. an HTML page with status 200)
``drop_connection``    before   the connection closes with no reply; nothing was done
``expire_session``     before   every session is expired, so the request (and the caller's
                                next ones) answer INVALID_SESSION_ID until it re-authenticates
``lose_reply``         after    the connection closes with no reply; the write WAS committed
``truncate_body``      after    status, headers and part of the body, then the connection
                                closes (a reply cut mid-body)
``latency_ms``         before   the delay, then whatever else the rule does (or the normal reply)
=====================  =======  ==============================================================
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field

#: Salesforce's messages for the error codes faults usually inject.
DEFAULT_MESSAGES = {
    "SERVER_UNAVAILABLE": "Server temporarily unavailable, please try again later.",
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
    "UNKNOWN_EXCEPTION": "An unexpected error occurred. Please try again.",
    "INVALID_SESSION_ID": "Session expired or invalid",
}

#: Default status per error code (Salesforce answers limit errors with 403).
DEFAULT_STATUS = {
    "SERVER_UNAVAILABLE": 503,
    "REQUEST_LIMIT_EXCEEDED": 403,
    "UNKNOWN_EXCEPTION": 500,
    "INVALID_SESSION_ID": 401,
}


@dataclass
class FaultRule:
    """One fault rule.

    :param status: HTTP status of the injected error (``None`` with no ``error_code``: no error,
        only latency or a dropped connection).
    :param error_code: Salesforce ``errorCode`` of the injected error.
    :param message: error message (default: Salesforce's for ``error_code``).
    :param rate: probability that a matching request is hit (1.0: every one).
    :param count: hit at most this many requests, then the rule is spent (``None``: unlimited).
    :param latency_ms: delay before answering (or failing) a hit request.
    :param drop_connection: close the connection without any response.
    :param path_prefix: only requests whose path starts with this.
    :param path_suffix: only requests whose path ends with this (e.g. ``/successfulResults`` of any job).
    :param method: only requests with this HTTP method (``None``: any).
    :param retry_after: value of the ``Retry-After`` header on the injected error.
    :param seed: seed of the random generator used for ``rate``.
    :param lose_reply: carry the request out (a write is committed), then close the connection
        without any reply: the fault a client cannot tell from ``drop_connection``.
    :param truncate_body: carry the request out, send the status, headers and part of the body,
        then close the connection.
    :param body: answer with this raw body instead of carrying the request out (with ``status``,
        default 200, and ``content_type``).
    :param content_type: ``Content-Type`` of ``body`` (default ``text/html;charset=UTF-8``).
    :param expire_session: expire every session first, so the request answers INVALID_SESSION_ID.
    """

    status: int | None = None
    error_code: str | None = None
    message: str | None = None
    rate: float = 1.0
    count: int | None = None
    latency_ms: int = 0
    drop_connection: bool = False
    path_prefix: str = "/services"
    path_suffix: str = ""
    method: str | None = None
    retry_after: int | None = None
    seed: int | None = None
    lose_reply: bool = False
    truncate_body: bool = False
    body: str | None = None
    content_type: str = "text/html;charset=UTF-8"
    expire_session: bool = False
    id: int = 0
    hits: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        fates = [name for name in ("drop_connection", "lose_reply", "truncate_body") if getattr(self, name)]
        if self.body is not None:
            fates.append("body")
            if self.error_code:
                raise ValueError("body and error_code exclude each other: body is sent as it is")
            self.status = 200 if self.status is None else self.status
        elif self.error_code or self.status is not None:
            fates.append("status/error_code")
        if len(fates) > 1:
            raise ValueError(f"a rule has one fate, got {fates}")
        if self.error_code and self.status is None:
            self.status = DEFAULT_STATUS.get(self.error_code, 400)
        if self.status is not None and not self.error_code and self.body is None:
            self.error_code = "SERVER_UNAVAILABLE" if self.status >= 500 else "UNKNOWN_EXCEPTION"
        if self.error_code and not self.message:
            self.message = DEFAULT_MESSAGES.get(self.error_code, self.error_code)
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0.0 and 1.0")
        self._random = random.Random(self.seed)

    @property
    def fails(self) -> bool:
        """Whether a hit request gets an error response (``body`` rules answer raw instead)."""
        return self.status is not None and self.body is None

    @property
    def after_handler(self) -> bool:
        """Whether the request is carried out first and only its reply is lost or cut."""
        return self.lose_reply or self.truncate_body

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is covered by this rule (before the rate is applied).

        :param method: HTTP method.
        :param path: request path.
        """
        if self.method and self.method.upper() != method.upper():
            return False
        return path.startswith(self.path_prefix) and path.endswith(self.path_suffix)

    def to_json(self) -> dict:
        """The rule as the admin API shows it."""
        return {
            "id": self.id,
            "status": self.status,
            "error_code": self.error_code,
            "message": self.message,
            "rate": self.rate,
            "count": self.count,
            "latency_ms": self.latency_ms,
            "drop_connection": self.drop_connection,
            "path_prefix": self.path_prefix,
            "path_suffix": self.path_suffix,
            "method": self.method,
            "retry_after": self.retry_after,
            "lose_reply": self.lose_reply,
            "truncate_body": self.truncate_body,
            "body": self.body,
            "content_type": self.content_type,
            "expire_session": self.expire_session,
            "hits": self.hits,
        }


_RULE_KEYS = frozenset(
    {"status", "error_code", "message", "rate", "count", "latency_ms", "drop_connection",
     "path_prefix", "path_suffix", "method", "retry_after", "seed", "lose_reply", "truncate_body", "body",
     "content_type",
     "expire_session"}
)


class FaultInjector:
    """Thread-safe set of fault rules; :meth:`pick` decides the fate of each request."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.injected = 0

    def add(self, spec: dict) -> FaultRule:
        """Add a rule from its admin-API JSON.

        :param spec: ``{"status", "error_code", "rate", "count", "latency_ms", ...}``.
        :raises ValueError: on unknown keys or bad values.
        """
        unknown = set(spec) - _RULE_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        rule = FaultRule(**spec)
        if rule.count is not None and rule.count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        """The active rules, oldest first."""
        with self._lock:
            return list(self._rules)

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The rule that hits this request, if any (first matching rule wins).

        A hit consumes one unit of the rule's ``count``; a spent rule is removed.

        :param method: HTTP method.
        :param path: request path.
        """
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.rate < 1.0 and rule._random.random() >= rule.rate:
                    continue
                rule.hits += 1
                self.injected += 1
                if rule.count is not None and rule.hits >= rule.count:
                    self._rules.remove(rule)
                return rule
            return None
