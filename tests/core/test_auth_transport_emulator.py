"""Auth flows, re-auth, retries and limits against the emulator over loopback HTTPS."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import requests

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceRequestLimitError,
    SalesforceServerError,
    SalesforceSessionExpiredError,
    SalesforceTransportError,
)
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

USER, PASSWORD, KEY, SECRET = "admin@emulator.local", "emulator", "emulator", "emulator"
DATA = "/services/data"


def grants(stats: dict, kind: str | None = None) -> int:
    return stats["token_grants_total"] if kind is None else stats["token_grants"].get(kind, 0)


def requests_to(stats: dict, method: str, path: str) -> int:
    return stats["requests"].get(f"{method} {path}", 0)


def limits_path(hook: SalesforceBaseHook) -> str:
    return hook.data_url("limits")


# -- flows ------------------------------------------------------------------------------------------
def test_password_flow_authenticates_once_and_caches(sf_conn, emulator_admin, salesforce_emulator) -> None:
    hook = SalesforceBaseHook(sf_conn())
    assert hook.request("GET", limits_path(hook)).json()["DailyApiRequests"]["Max"] > 0
    assert hook.instance_url.startswith("https://127.0.0.1")
    SalesforceBaseHook(sf_conn()).request("GET", limits_path(hook))  # a second hook, same process
    assert grants(emulator_admin.stats(), "password") == 1


def test_wrong_password_is_an_auth_error(sf_conn) -> None:
    hook = SalesforceBaseHook(sf_conn(password="wrong-password-123"))
    with pytest.raises(SalesforceAuthError) as err:
        hook.request("GET", "/services/data/")
    assert err.value.error == "invalid_grant" and err.value.status == 400
    assert "wrong-password-123" not in str(err.value)


def test_client_credentials_flow(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn(login=None, password=None, extra={"auth_type": "client_credentials"}))
    assert hook.request("GET", limits_path(hook)).status_code == 200
    assert grants(emulator_admin.stats(), "client_credentials") == 1


def test_session_flow_uses_the_given_session_and_cannot_renew(sf_conn, salesforce_emulator, emulator_admin) -> None:
    token = requests.post(
        f"{salesforce_emulator.url}/services/oauth2/token",
        data={"grant_type": "password", "client_id": KEY, "client_secret": SECRET, "username": USER, "password": PASSWORD},
        verify=salesforce_emulator.ca_bundle, timeout=10,
    ).json()
    conn_id = sf_conn(login=None, password=None,
                      extra={"auth_type": "session", "session_id": token["access_token"], "instance_url": token["instance_url"]})
    hook = SalesforceBaseHook(conn_id)
    assert hook.request("GET", limits_path(hook)).status_code == 200
    before = grants(emulator_admin.stats())
    emulator_admin.expire_sessions()
    with pytest.raises(SalesforceSessionExpiredError, match="cannot re-authenticate") as err:
        hook.request("GET", limits_path(hook))
    assert token["access_token"] not in str(err.value)
    assert grants(emulator_admin.stats()) == before  # no token request attempted


def test_refresh_token_flow(sf_conn, emulator_admin) -> None:
    refresh = emulator_admin.refresh_token(USER, KEY)
    hook = SalesforceBaseHook(sf_conn(login=None, password=None,
                                      extra={"auth_type": "refresh_token", "refresh_token": refresh}))
    assert hook.request("GET", limits_path(hook)).status_code == 200
    assert grants(emulator_admin.stats(), "refresh_token") == 1


# -- re-auth ----------------------------------------------------------------------------------------
def test_expired_session_causes_exactly_one_reauth(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    hook.request("GET", limits_path(hook))
    old = hook.session.token
    emulator_admin.expire_sessions()
    assert hook.request("GET", limits_path(hook)).status_code == 200
    stats = emulator_admin.stats()
    assert grants(stats, "password") == 2 and stats["reauths"] == 1
    assert hook.session.token.access_token != old.access_token


def test_concurrent_expiry_causes_one_token_request(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    hook.request("GET", limits_path(hook))
    emulator_admin.expire_sessions()
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        try:
            # one hook per thread, like parallel tasks in one worker process
            h = SalesforceBaseHook(hook.salesforce_conn_id)
            barrier.wait()
            h.request("GET", limits_path(h))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert grants(emulator_admin.stats(), "password") == 2


def test_rejected_fresh_token_is_an_error_not_a_loop(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = limits_path(hook)
    hook.request("GET", path)
    emulator_admin.fault(error_code="INVALID_SESSION_ID", count=5, path_prefix=path)
    with pytest.raises(SalesforceSessionExpiredError) as err:
        hook.request("GET", path)
    stats = emulator_admin.stats()
    assert requests_to(stats, "GET", path) == 3  # warm-up, first try, one replay
    assert grants(stats, "password") == 2
    assert err.value.status == 401 and err.value.error_code == "INVALID_SESSION_ID"


# -- retries ----------------------------------------------------------------------------------------
def test_injected_503s_are_absorbed(sf_conn, emulator_admin, caplog) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = limits_path(hook)
    hook.request("GET", path)
    emulator_admin.fault(status=503, count=2, path_prefix=path)
    caplog.set_level(logging.WARNING, logger="airflow_provider_salesforce_suite.core.retry")
    assert hook.request("GET", path).status_code == 200
    assert requests_to(emulator_admin.stats(), "GET", path) == 4
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2 and "HTTP 503" in retries[0]


def test_503_beyond_the_bound_raises_server_error(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"max_retries": 1}))
    path = limits_path(hook)
    hook.request("GET", path)
    emulator_admin.fault(status=503, count=10, path_prefix=path)
    with pytest.raises(SalesforceServerError) as err:
        hook.request("GET", path)
    assert err.value.status == 503 and err.value.error_code == "SERVER_UNAVAILABLE"
    assert requests_to(emulator_admin.stats(), "GET", path) == 3  # warm-up + 1 + 1 retry


def test_total_retry_time_is_bounded(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"max_retries": 50, "retry_max_seconds": 2}))
    path = limits_path(hook)
    hook.request("GET", path)
    emulator_admin.fault(status=503, count=100, path_prefix=path)
    started = time.monotonic()
    with pytest.raises(SalesforceServerError):
        hook.request("GET", path)
    assert time.monotonic() - started < 4


def test_retry_after_is_honoured(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = limits_path(hook)
    hook.request("GET", path)
    emulator_admin.fault(status=503, count=1, retry_after=2, path_prefix=path)
    started = time.monotonic()
    assert hook.request("GET", path).status_code == 200
    assert time.monotonic() - started >= 1.9


def test_daily_limit_is_not_retried(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = limits_path(hook)
    hook.request("GET", path)
    emulator_admin.fault(error_code="REQUEST_LIMIT_EXCEEDED", count=1, path_prefix=path)
    with pytest.raises(SalesforceRequestLimitError):
        hook.request("GET", path)
    assert requests_to(emulator_admin.stats(), "GET", path) == 2


def test_concurrency_limit_is_retried(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = limits_path(hook)
    hook.request("GET", path)
    emulator_admin.fault(error_code="REQUEST_LIMIT_EXCEEDED", message="ConcurrentPerOrgLongTxn Limit exceeded.",
                         count=1, path_prefix=path)
    assert hook.request("GET", path).status_code == 200


def test_dropped_connection_on_get_is_retried(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = limits_path(hook)
    hook.request("GET", path)
    emulator_admin.fault(drop_connection=True, count=1, path_prefix=path)
    assert hook.request("GET", path).status_code == 200
    assert requests_to(emulator_admin.stats(), "GET", path) == 3


def test_dropped_connection_on_post_is_not_retried(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    hook.request("GET", limits_path(hook))
    path = hook.data_url("sobjects/Account")
    emulator_admin.fault(drop_connection=True, count=1, method="POST", path_prefix=path)
    with pytest.raises(SalesforceTransportError) as err:
        hook.request("POST", path, json={"Name": "Not retried"})
    assert "POST" in str(err.value) and path in str(err.value)
    assert requests_to(emulator_admin.stats(), "POST", path) == 1


def test_read_timeout_is_a_transport_error_after_retries(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"timeout": 0.3, "max_retries": 1}))
    path = limits_path(hook)
    hook.request("GET", path)
    emulator_admin.fault(latency_ms=1500, count=5, path_prefix=path)
    with pytest.raises(SalesforceTransportError, match="ReadTimeout"):
        hook.request("GET", path)


# -- limits -----------------------------------------------------------------------------------------
def test_limit_info_parsed_and_warned_once(sf_conn, caplog) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"limit_warning_threshold": 0.00001}))
    caplog.set_level(logging.WARNING, logger="airflow_provider_salesforce_suite.core.limits")
    for _ in range(3):
        hook.request("GET", limits_path(hook))
    usage = hook.api_usage
    assert usage is not None and usage.limit > 0 and usage.used >= 1
    assert len([r for r in caplog.records if "API usage" in r.getMessage()]) == 1


def test_test_connection(sf_conn) -> None:
    ok, message = SalesforceBaseHook(sf_conn()).test_connection()
    assert ok and "64.0" in message
    ok, message = SalesforceBaseHook(sf_conn("sf_bad", password="bad-password-42")).test_connection()
    assert not ok and "SalesforceAuthError" in message and "bad-password-42" not in message


def test_tls_verification_against_emulator_cert(sf_conn) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"ca_bundle": None, "verify": True}))
    with pytest.raises(SalesforceTransportError):
        hook.request("GET", "/services/data/")
    hook = SalesforceBaseHook(sf_conn("sf_noverify", extra={"ca_bundle": None, "verify": False}))
    assert hook.request("GET", "/services/data/").status_code == 200


def test_api_error_carries_context(sf_conn) -> None:
    hook = SalesforceBaseHook(sf_conn())
    with pytest.raises(SalesforceApiError) as err:
        hook.request("GET", hook.data_url("query"), params={"q": "SELECT Id FROMM Account"})
    assert err.value.status == 400 and err.value.method == "GET"
    assert err.value.path == hook.data_url("query") and "FROMM" not in (err.value.path or "")
