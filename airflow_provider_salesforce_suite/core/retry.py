"""The one retry policy: which failures are transient, and how long to back off.

The same tenacity keyword arguments drive :class:`tenacity.Retrying` (requests) and
:class:`tenacity.AsyncRetrying` (aiohttp), and the same pure functions decide, so sync and async
callers (and the token calls in :mod:`.auth`) retry identically:

* :func:`classify_exception` names the cause of a transport failure, whichever library raised it:
  a TLS certificate/handshake problem (never retried: it does not heal), a failed connect (the
  request never left: retried for any method), a connection reset/closed mid-request or a read
  timeout (the server may have acted: retried only for idempotent calls; a non-idempotent call
  raises :class:`~airflow_provider_salesforce_suite.core.errors.SalesforceOutcomeUnknownError`).
* :func:`classify_transient` decides on HTTP replies: 503 always; 502/504 and a bare 500 (no error
  code, ``UNKNOWN_EXCEPTION`` or ``SERVER_UNAVAILABLE``) for idempotent calls; lock and concurrency
  errors; 429 after the server's requested wait, up to ``rate_limit_max_wait``.
"""

from __future__ import annotations

import email.utils
import logging
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping, NoReturn
from urllib.parse import urlsplit

import tenacity

from airflow_provider_salesforce_suite.core.errors import (
    LIMIT_CODES,
    SalesforceOutcomeUnknownError,
    SalesforceTransportError,
    error_from_response,
    parse_error_body,
    safe_path,
)
from airflow_provider_salesforce_suite.core.secrets import redact_text
from airflow_provider_salesforce_suite.core.tls import explain_tls, tls_kind

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.core.config import DeskConnectionConfig, SalesforceConnectionConfig

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# 503 means "not processed"; 502/504 may come after the server acted, so only idempotent calls retry them.
_ALWAYS_TRANSIENT_STATUSES = frozenset({503})
_IDEMPOTENT_TRANSIENT_STATUSES = frozenset({502, 504})
_TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
# A 500 is retried (idempotent calls only) when it names no specific error: nothing, one of these
# codes, or OAuth's "unknown_error". A SOAP fault is a 500 too, with a real exceptionCode
# (MALFORMED_QUERY ...): that one is an answer, not a glitch.
_SERVER_ERROR_STATUS = 500
_UNSPECIFIC_500_CODES = frozenset({"UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE", "unknown_error"})
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
    :param rate_limited: a 429 with a server-given wait: waited up to ``rate_limit_max_wait``,
        outside the ``max_seconds`` budget.
    :param kind: for a transport failure, its :func:`classify_exception` kind.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, result: Any = None,
                 rate_limited: bool = False, kind: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.result = result
        self.rate_limited = rate_limited
        self.kind = kind


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop.

    :param max_retries: retries after the first attempt.
    :param max_seconds: total time budget for one call including backoff.
    :param initial_backoff: first backoff in seconds (doubles each retry, plus jitter).
    :param max_backoff: cap on one backoff.
    :param rate_limit_max_wait: longest wait a 429's ``Retry-After`` / ``X-Rate-Limit-Reset`` may ask
        for; waits up to it do not count against ``max_seconds``, a longer one gives up at once.
    """

    max_retries: int = 4
    max_seconds: float = 60.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    rate_limit_max_wait: float = 90.0

    @classmethod
    def from_config(cls, config: SalesforceConnectionConfig | DeskConnectionConfig) -> RetryPolicy:
        """The policy of a connection's ``max_retries``, ``retry_max_seconds`` and ``rate_limit_max_wait``.

        :param config: a Salesforce (or Pardot's Salesforce part) or Desk connection config.
        """
        return cls(max_retries=config.max_retries, max_seconds=config.retry_max_seconds,
                   rate_limit_max_wait=config.rate_limit_max_wait)


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
    if status == _SERVER_ERROR_STATUS and is_idempotent(method, idempotent) and \
            all(d.error_code in _UNSPECIFIC_500_CODES for d in details):
        return f"HTTP {status} {details[0].error_code}" if details else f"HTTP {status}"
    for detail in details:
        if detail.error_code in _TRANSIENT_CODES:
            return f"HTTP {status} {detail.error_code}"
        # Only the concurrency limit clears by itself; the daily total limit does not.
        if detail.error_code in LIMIT_CODES and "concurrent" in detail.message.lower():
            return f"HTTP {status} {detail.error_code} (concurrency)"
    # A 429 that says the daily quota is spent (e.g. Pardot's error 122) will not clear by waiting.
    if status == _RATE_LIMITED_STATUS and not any(d.error_code in LIMIT_CODES for d in details):
        return f"HTTP {status}"
    return None


#: Kinds of transport failure (:func:`classify_exception`).
TLS = "tls"  # certificate or handshake: the request never left, and retrying will not help
CONNECT = "connect"  # no connection: the request never left, safe to send again whatever it was
DROPPED = "dropped"  # reset or closed after the request may have left (mid-request or mid-reply)
TIMEOUT = "timeout"  # no reply within the read timeout: the server may still be working on it

_KIND_TEXT = {
    TLS: "TLS certificate/handshake failure",
    CONNECT: "could not connect",
    DROPPED: "connection reset or closed before the whole reply arrived",
    TIMEOUT: "no reply within the read timeout",
}
# Exception class names (anywhere in the MRO or cause chain) that mean the connect step failed;
# names rather than classes, so requests, urllib3 and aiohttp share one table without importing them.
_CONNECT_NAMES = frozenset({
    "NewConnectionError", "ConnectTimeoutError", "ConnectTimeout", "NameResolutionError", "ConnectionRefusedError",
    "gaierror", "ClientConnectorError", "ConnectionTimeoutError",
})
_TIMEOUT_NAMES = frozenset({"ReadTimeout", "ReadTimeoutError", "SocketTimeoutError", "ServerTimeoutError",
                            "TimeoutError", "timeout"})
_SSL_WRAPPER_NAMES = frozenset({"SSLError", "ClientSSLError"})
# Frames of a TLS handshake: a connection closed or reset there never carried the request.
_HANDSHAKE_FRAMES = frozenset({"do_handshake", "_do_handshake", "start_tls"})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, urllib3 ``reason``, aiohttp ``os_error``)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None),
                 getattr(current, "os_error", None), *current.args]
        todo.extend(e for e in inner if isinstance(e, BaseException))


def _raised_in_handshake(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in _HANDSHAKE_FRAMES:
            return True
        tb = tb.tb_next
    return False


def classify_exception(exc: BaseException) -> str:
    """The kind of a transport failure: :data:`TLS`, :data:`CONNECT`, :data:`DROPPED` or :data:`TIMEOUT`.

    One table for requests/urllib3 and aiohttp. An ``ssl.SSLEOFError`` is not a certificate problem:
    the peer closed the connection (during the handshake: the request never left; later: dropped).

    :param exc: what the HTTP library raised.
    """
    chain = list(_causes(exc))
    names = {cls.__name__ for e in chain for cls in type(e).__mro__}
    ssl_errors = [e for e in chain if isinstance(e, ssl.SSLError)]
    closed = [e for e in ssl_errors if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError))]
    if any(isinstance(e, ssl.CertificateError) for e in chain):
        return TLS
    if (ssl_errors and not closed) or (names & _SSL_WRAPPER_NAMES and not ssl_errors):
        return TLS
    if names & _CONNECT_NAMES or any(_raised_in_handshake(e) for e in chain):
        return CONNECT
    if not closed and names & _TIMEOUT_NAMES:
        return TIMEOUT
    return DROPPED


def _cause_text(exc: BaseException) -> str:
    """``ConnectionError (SSLEOFError: EOF occurred in violation of protocol)``: outer and root cause."""
    root = list(_causes(exc))[-1]
    if root is exc:
        return type(exc).__name__
    detail = getattr(root, "verify_message", None) or getattr(root, "reason", None) or str(root)
    detail = detail if isinstance(detail, str) else ""
    return redact_text(f"{type(exc).__name__} ({type(root).__name__}{': ' + detail[:160] if detail else ''})")


def transport_error(kind: str, exc: BaseException, method: str, url: str, *, attempts: int = 1) -> SalesforceTransportError:
    """The exception for a transport failure that will not be retried (again).

    :param kind: its :func:`classify_exception` kind.
    :param exc: what the HTTP library raised.
    :param method: HTTP method.
    :param url: request URL (only the host, for TLS problems, and the path are named).
    :param attempts: how many times the call was sent.
    """
    method = method.upper()
    path = safe_path(url)
    cause = _cause_text(exc)
    if kind == TLS:
        host = urlsplit(url).hostname or "the server"
        reason, fix = explain_tls(tls_kind(_causes(exc)), host)
        return SalesforceTransportError(
            f"{method} {path} failed: TLS certificate/handshake problem with {host}: {reason}. Not retried. "
            f"{fix}. Cause: {cause}"
        )
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return SalesforceTransportError(f"{method} {path} failed{tries}: {_KIND_TEXT[kind]}: {cause}")


def raise_transport_failure(exc: BaseException, *, method: str, url: str, idempotent: bool | None,
                            attempts: int = 1) -> NoReturn:
    """Raise what a transport exception means: a :class:`RetryableFault` to retry it, or the final error.

    A connect failure is retried for any method; a drop or read timeout only for idempotent calls,
    since the server may have carried the call out: for other calls it raises
    :class:`SalesforceOutcomeUnknownError`. TLS problems are never retried.

    :param exc: what the HTTP library raised.
    :param method: HTTP method.
    :param url: request URL.
    :param idempotent: the caller's word on whether the call may be replayed (None: by method).
    :param attempts: the attempt that failed (1 for the first).
    """
    kind = classify_exception(exc)
    if kind == CONNECT or (kind in (DROPPED, TIMEOUT) and is_idempotent(method, idempotent)):
        raise RetryableFault(f"{_KIND_TEXT[kind]}: {type(exc).__name__}", kind=kind) from exc
    if kind in (DROPPED, TIMEOUT):
        raise SalesforceOutcomeUnknownError(
            f"{method.upper()} {safe_path(url)}: the request was sent, then {_KIND_TEXT[kind]} "
            f"({_cause_text(exc)}); Salesforce may or may not have carried it out. Not retried, since the "
            "call is not idempotent: check its effect before sending it again",
            method=method, path=url,
        ) from None
    raise transport_error(kind, exc, method, url, attempts=attempts) from None


def check_reply(status: int, headers: Mapping[str, str] | None, body: bytes | None, *, method: str, url: str,
                idempotent: bool | None, policy: RetryPolicy, result: Any) -> None:
    """Raise a :class:`RetryableFault` for a transient reply; a 429 asking for more than
    ``policy.rate_limit_max_wait`` raises its ``SalesforceRequestLimitError`` at once.

    :param status: HTTP status.
    :param headers: reply headers.
    :param body: reply body (error bodies only).
    :param method: HTTP method.
    :param url: request URL.
    :param idempotent: the caller's word on whether the call may be replayed.
    :param policy: the retry bounds.
    :param result: the reply, handed back to the caller if retries run out.
    """
    reason = classify_transient(status, headers, body, method=method, idempotent=idempotent)
    if not reason:
        return
    retry_after = parse_retry_after(headers, status)
    rate_limited = status == _RATE_LIMITED_STATUS and retry_after is not None
    if rate_limited and retry_after > policy.rate_limit_max_wait:  # type: ignore[operator]
        raise error_from_response(
            status, headers, body, method, url,
            note=f"gave up at once: the server asked to wait {retry_after:.0f}s, more than the connection's "
                 f"rate_limit_max_wait of {policy.rate_limit_max_wait:.0f}s",
        )
    raise RetryableFault(reason, retry_after=retry_after, result=result, rate_limited=rate_limited)


def retries_exhausted(fault: RetryableFault, *, method: str, url: str, attempts: int) -> Any:
    """The last transient reply when retries ran out, or the error for a failure that kept recurring.

    :param fault: the last :class:`RetryableFault`.
    :param method: HTTP method.
    :param url: request URL.
    :param attempts: how many times the call was sent.
    """
    if fault.result is not None:
        return fault.result
    cause = fault.__cause__ or fault
    raise transport_error(fault.kind or classify_exception(cause), cause, method, url, attempts=attempts) from None


def _wait(policy: RetryPolicy):
    # Doubling from initial_backoff up to max_backoff, plus up to initial_backoff of jitter. Built from
    # wait_exponential + wait_random (tenacity >= 8.2 alike): wait_exponential_jitter's ``initial`` is
    # deprecated in tenacity 9 and its replacement ``multiplier`` is missing from 8.x.
    backoff = tenacity.wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff) + \
        tenacity.wait_random(0, policy.initial_backoff)

    def wait(retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RetryableFault) and exc.rate_limited:
            return exc.retry_after  # check_reply gave up on waits beyond rate_limit_max_wait
        if isinstance(exc, RetryableFault) and exc.retry_after is not None:
            return min(exc.retry_after, policy.max_seconds)
        return backoff(retry_state)

    return wait


def _stop(policy: RetryPolicy):
    attempts = tenacity.stop_after_attempt(policy.max_retries + 1)
    budget = tenacity.stop_before_delay(policy.max_seconds)

    def stop(retry_state: tenacity.RetryCallState) -> bool:
        if attempts(retry_state):
            return True
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        # A rate-limit wait is the server's instruction, bounded per wait by rate_limit_max_wait and
        # in number by max_retries: Desk's 60-second window must not exhaust the general budget.
        return not (isinstance(exc, RetryableFault) and exc.rate_limited) and budget(retry_state)

    return stop


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
        "stop": _stop(policy),
        "wait": _wait(policy),
        "retry": tenacity.retry_if_exception_type(RetryableFault),
        "before_sleep": _log_retry(policy),
        "reraise": True,
    }


def sync_retrying(policy: RetryPolicy) -> tenacity.Retrying:
    return tenacity.Retrying(**retry_kwargs(policy))


def async_retrying(policy: RetryPolicy) -> tenacity.AsyncRetrying:
    return tenacity.AsyncRetrying(**retry_kwargs(policy))
