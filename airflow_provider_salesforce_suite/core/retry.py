"""The one retry policy: which failures are transient, and how long to back off.

The same tenacity keyword arguments drive :class:`tenacity.Retrying` (requests) and
:class:`tenacity.AsyncRetrying` (aiohttp), so sync and async callers retry identically.
"""

from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import tenacity

from airflow_provider_salesforce_suite.core.errors import parse_error_body

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.core.config import SalesforceConnectionConfig

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# 503 means "not processed"; 502/504 may come after the server acted, so only idempotent calls retry them.
_ALWAYS_TRANSIENT_STATUSES = frozenset({503})
_IDEMPOTENT_TRANSIENT_STATUSES = frozenset({502, 504})
_TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
# 429 Too Many Requests (Desk, Pardot): not processed, so safe to replay after the server's wait.
_RATE_LIMITED_STATUS = 429
# Seconds until the rate-limit window resets (Desk); consulted for 429 only, since every Desk
# response carries it.
_RATE_LIMIT_RESET_HEADER = "x-rate-limit-reset"
# A reset value above this is an epoch timestamp rather than a number of seconds.
_EPOCH_THRESHOLD = 1_000_000_000


class RetryableFault(Exception):
    """Raised inside a retry loop for a transient failure.

    :param reason: short description for logs (status, error code or exception class).
    :param retry_after: seconds the server asked us to wait, if any.
    :param result: the transient response, returned to the caller if retries run out.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, result: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.result = result


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop.

    :param max_retries: retries after the first attempt.
    :param max_seconds: total time budget for one call including backoff.
    :param initial_backoff: first backoff in seconds (doubles each retry, plus jitter).
    :param max_backoff: cap on one backoff.
    """

    max_retries: int = 4
    max_seconds: float = 60.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0

    @classmethod
    def from_config(cls, config: SalesforceConnectionConfig) -> RetryPolicy:
        return cls(max_retries=config.max_retries, max_seconds=config.retry_max_seconds)


def is_idempotent(method: str, idempotent: bool | None = None) -> bool:
    """Whether a call may be replayed after an ambiguous failure (caller's word wins)."""
    return idempotent if idempotent is not None else method.upper() in IDEMPOTENT_METHODS


def parse_retry_after(headers: Mapping[str, str] | None, status: int | None = None) -> float | None:
    """Seconds the server asked us to wait, or None.

    ``Retry-After`` (delta-seconds or HTTP date); for a 429 without it, the rate-limit reset header
    (seconds, or an epoch timestamp).
    """
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value and status == _RATE_LIMITED_STATUS:
        reset = next((v for k, v in headers.items() if k.lower() == _RATE_LIMIT_RESET_HEADER), None)
        try:
            seconds = float(reset) if reset else None
        except ValueError:
            seconds = None
        if seconds is not None:
            return max(0.0, seconds - time.time() if seconds > _EPOCH_THRESHOLD else seconds)
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify_transient(
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes | None,
    *,
    method: str,
    idempotent: bool | None = None,
) -> str | None:
    """Reason string if this response is a transient failure worth retrying, else None."""
    if status in _ALWAYS_TRANSIENT_STATUSES:
        return f"HTTP {status}"
    if status in _IDEMPOTENT_TRANSIENT_STATUSES and is_idempotent(method, idempotent):
        return f"HTTP {status}"
    if status < 400:
        return None
    content_type = ""
    if headers:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    details = parse_error_body(body, content_type)
    for detail in details:
        if detail.error_code in _TRANSIENT_CODES:
            return f"HTTP {status} {detail.error_code}"
        # Only the concurrency limit clears by itself; the daily total limit does not.
        if detail.error_code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in detail.message.lower():
            return f"HTTP {status} REQUEST_LIMIT_EXCEEDED (concurrency)"
    # A 429 that says the daily quota is spent (e.g. Pardot's error 122) will not clear by waiting.
    if status == _RATE_LIMITED_STATUS and not any(d.error_code == "REQUEST_LIMIT_EXCEEDED" for d in details):
        return f"HTTP {status}"
    return None


def classify_transient_exception(exc: BaseException, *, connect_failed: bool, method: str,
                                 idempotent: bool | None = None) -> str | None:
    """Reason if a transport exception may be retried: a failed connect always, others if idempotent."""
    if connect_failed or is_idempotent(method, idempotent):
        return type(exc).__name__
    return None


def _wait(policy: RetryPolicy):
    backoff = tenacity.wait_exponential_jitter(
        initial=policy.initial_backoff, max=policy.max_backoff, jitter=policy.initial_backoff
    )

    def wait(retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RetryableFault) and exc.retry_after is not None:
            return min(exc.retry_after, policy.max_seconds)
        return backoff(retry_state)

    return wait


def _log_retry(policy: RetryPolicy):
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        reason = exc.reason if isinstance(exc, RetryableFault) else type(exc).__name__
        sleep = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "Salesforce call failed transiently (%s); retry %d of %d in %.2fs",
            reason,
            retry_state.attempt_number,
            policy.max_retries,
            sleep,
        )

    return before_sleep


def retry_kwargs(policy: RetryPolicy) -> dict[str, Any]:
    """The tenacity arguments shared by the sync and async loops."""
    return {
        "stop": tenacity.stop_after_attempt(policy.max_retries + 1)
        | tenacity.stop_before_delay(policy.max_seconds),
        "wait": _wait(policy),
        "retry": tenacity.retry_if_exception_type(RetryableFault),
        "before_sleep": _log_retry(policy),
        "reraise": True,
    }


def sync_retrying(policy: RetryPolicy) -> tenacity.Retrying:
    return tenacity.Retrying(**retry_kwargs(policy))


def async_retrying(policy: RetryPolicy) -> tenacity.AsyncRetrying:
    return tenacity.AsyncRetrying(**retry_kwargs(policy))
