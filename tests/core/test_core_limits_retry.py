"""Sforce-Limit-Info parsing, the once-per-crossing warning, and the transient classification."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_salesforce_suite.core.limits import AppUsage, LimitWatcher, parse_limit_info
from airflow_provider_salesforce_suite.core.retry import (
    classify_transient,
    is_idempotent,
    parse_retry_after,
)
from airflow_provider_salesforce_suite.core.transport import auth_headers, needs_reauth, should_authenticate
from airflow_provider_salesforce_suite.core.auth import Token


def test_parse_limit_info() -> None:
    usage = parse_limit_info("api-usage=25/15000, per-app-api-usage=17/250(appName=sample-connected-app)")
    assert (usage.used, usage.limit) == (25, 15000)
    assert usage.per_app == (AppUsage(17, 250, "sample-connected-app"),)
    assert usage.share == pytest.approx(25 / 15000)
    assert parse_limit_info("api-usage=3/10").per_app == ()
    assert parse_limit_info(None) is None and parse_limit_info("garbage") is None
    assert parse_limit_info("per-app-api-usage=1/2(appName=x)") is None  # no org usage


def test_watcher_warns_once_per_crossing(caplog) -> None:
    watcher = LimitWatcher(0.8, "sf_conn")
    caplog.set_level(logging.WARNING, logger="airflow_provider_salesforce_suite.core.limits")
    seq = ["api-usage=10/100", "api-usage=80/100", "api-usage=90/100", "api-usage=50/100", "api-usage=85/100"]
    fired = [watcher.observe(parse_limit_info(h)) for h in seq]
    assert fired == [False, True, False, False, True]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "80/100" in warnings[0].getMessage() and "sf_conn" in warnings[0].getMessage()


def body(code: str, message: str = "m") -> bytes:
    return json.dumps([{"errorCode": code, "message": message}]).encode()


@pytest.mark.parametrize(
    "status, payload, method, expected",
    [
        (503, b"", "POST", True),
        (502, b"", "GET", True),
        (504, b"", "DELETE", True),
        (502, b"", "POST", False),
        # A bare 500 on an idempotent call is a glitch (issue #14); on a POST the server may have acted.
        (500, b"", "GET", True),
        (500, b"<html><title>Internal Server Error</title></html>", "PUT", True),
        (500, body("UNKNOWN_EXCEPTION"), "GET", True),
        (500, b"", "POST", False),
        (500, body("UNKNOWN_EXCEPTION"), "POST", False),
        # ... but a 500 that names a real error is an answer: never retried.
        (500, body("MALFORMED_QUERY", "unexpected token"), "GET", False),
        (500, body("INVALID_FIELD"), "DELETE", False),
        (404, body("NOT_FOUND"), "GET", False),
        (403, body("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded"), "POST", True),
        (403, body("REQUEST_LIMIT_EXCEEDED", "Too many concurrent requests"), "GET", True),
        (403, body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), "GET", False),
        (400, body("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"), "PATCH", True),
        (503, body("SERVER_UNAVAILABLE"), "POST", True),
        (200, b"", "GET", False),
    ],
)
def test_classify_transient(status, payload, method, expected) -> None:
    assert bool(classify_transient(status, {}, payload, method=method)) is expected


def test_idempotency_override() -> None:
    assert is_idempotent("GET") and not is_idempotent("POST")
    assert is_idempotent("POST", True) and not is_idempotent("GET", False)
    assert classify_transient(502, {}, b"", method="POST", idempotent=True)


def test_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({}) is None and parse_retry_after({"Retry-After": "soon"}) is None


def test_needs_reauth() -> None:
    assert needs_reauth(401, {}, b"")
    xml = b'<error xmlns="http://www.force.com/2009/06/asyncapi/dataload"><exceptionCode>InvalidSessionId</exceptionCode></error>'
    assert needs_reauth(400, {}, xml)
    assert not needs_reauth(400, {}, body("INVALID_FIELD"))
    assert not needs_reauth(403, {}, b"")


def test_auth_headers_replace_stale_and_use_bulk_header() -> None:
    token = Token(access_token="00Dfresh!token", instance_url="https://acme.my.salesforce.com")
    h = auth_headers("https://acme.my.salesforce.com/services/data/v64.0/", token, {"authorization": "Bearer stale"})
    assert h["Authorization"] == "Bearer 00Dfresh!token" and len([k for k in h if k.lower() == "authorization"]) == 1
    h = auth_headers("https://acme.my.salesforce.com/services/async/64.0/job", token, {"X-SFDC-Session": "stale"})
    assert h["X-SFDC-Session"] == "00Dfresh!token" and "Authorization" not in h


def test_token_only_sent_to_salesforce_hosts() -> None:
    token = Token(access_token="t" * 20, instance_url="https://127.0.0.1:8555")
    assert should_authenticate("https://127.0.0.1:8555/services/data/", token, "https://127.0.0.1:8555")
    assert should_authenticate("https://pi.pardot.com/api/v5", token, "https://login.salesforce.com")
    assert not should_authenticate("https://evil.example.com/services/data/", token, "https://login.salesforce.com")
    assert not should_authenticate("https://salesforce.com.evil.example/x", token, "https://login.salesforce.com")
    assert "00Dx" not in repr(Token(access_token="00Dxsecret!abc", instance_url="https://a"))
