"""PardotHook and DeskHook transport against real loopback HTTP servers (scripted replies; the Desk
API itself against the emulator is in ``test_desk_api.py``).

The Pardot token comes from the emulator's OAuth endpoint; the loopback servers record the headers
they receive and answer with Pardot / Desk bodies.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceNotFoundError,
    SalesforceRequestLimitError,
    SalesforceServerError,
    SalesforceTransportError,
)
from airflow_provider_salesforce_suite.core.transport import should_authenticate
from airflow_provider_salesforce_suite.hooks.desk import DeskHook
from airflow_provider_salesforce_suite.hooks.pardot import BUSINESS_UNIT_HEADER, PardotHook

BU = "0Uv5g000000GmaPCAS"
Reply = tuple  # (status, body, headers) -- body: dict/list (JSON), bytes, or a float = seconds to stall


class LoopbackApi:
    """A tiny HTTP server: scripted replies per path (the last one repeats) and a log of what it received."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.received: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                api.received.append({"method": self.command, "path": parts.path, "query": parse_qs(parts.query),
                                     "headers": dict(self.headers), "body": self.rfile.read(length),
                                     "url": f"http://{self.headers['Host']}{self.path}"})
                queue = api.replies.get(parts.path) or [(200, {"ok": True}, {})]
                status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
                if isinstance(body, float):
                    time.sleep(body)
                    body = {}
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def reply(self, path: str, *replies: Reply) -> None:
        self.replies[path] = [(s, b, dict(h)) for s, b, h in (r if len(r) == 3 else (*r, {}) for r in replies)]

    def paths(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    server = LoopbackApi()
    yield server
    server.close()


# -- Pardot ---------------------------------------------------------------------------------------
@pytest.fixture
def pardot(sf_conn, api):
    """``pardot(**extra)`` -> a PardotHook: Salesforce OAuth on the emulator, Pardot on the loopback server."""

    def make(**extra: Any) -> PardotHook:
        extra = {"business_unit_id": BU, "pardot_host": f"http://localhost:{api.port}", "max_retries": 2,
                 "retry_max_seconds": 5, **extra}
        return PardotHook(sf_conn("pd_test", extra=extra, conn_type="salesforce_pardot"))

    return make


def test_pardot_v5_request_carries_emulator_token_and_business_unit(pardot, api, emulator_admin) -> None:
    api.reply("/api/v5/objects/prospects", (200, {"values": [{"id": 42}], "nextPageUrl": None}))
    hook = pardot()
    reply = hook.request("GET", hook.v5_path("prospects"), params={"fields": "id,email"})
    assert reply.json()["values"] == [{"id": 42}]
    (got,) = api.received
    token = hook.session.token.access_token
    assert token.startswith("00D") and got["headers"]["Authorization"] == f"Bearer {token}"
    assert got["headers"][BUSINESS_UNIT_HEADER] == BU and got["query"] == {"fields": ["id,email"]}
    assert emulator_admin.stats()["token_grants_total"] == 1  # the token came from the emulator's OAuth


def test_pardot_v4_gets_format_json_and_caller_headers(pardot, api) -> None:
    api.reply("/api/prospect/version/4/do/query", (200, {"@attributes": {"stat": "ok", "version": 1}, "result": {}}))
    hook = pardot(pardot_api_version="4")
    assert hook.v4_path("prospect", "query") == "/api/prospect/version/4/do/query"
    hook.request("POST", hook.v4_path("prospect", "query"), data={"limit": "1"}, headers={"X-Trace": "t1"})
    (got,) = api.received
    assert got["query"] == {"format": ["json"]} and got["body"] == b"limit=1"
    assert got["headers"]["X-Trace"] == "t1" and got["headers"][BUSINESS_UNIT_HEADER] == BU
    hook.request("GET", hook.v4_path("prospect", "query"), params={"format": "xml"})
    assert api.received[-1]["query"] == {"format": ["xml"]}


def test_pardot_v5_error_body(pardot, api) -> None:
    api.reply("/api/v5/objects/prospects", (400, {"code": 60, "message": "Invalid field: bogus"}))
    api.reply("/api/v5/objects/prospects/9", (404, {"code": 404, "message": "Not Found"}))
    hook = pardot()
    with pytest.raises(SalesforceApiError) as err:
        hook.request("GET", hook.v5_path("prospects"), params={"fields": "bogus"})
    assert (err.value.status, err.value.error_code) == (400, "PARDOT_60")
    assert "Invalid field: bogus" in str(err.value) and "/api/v5/objects/prospects" in str(err.value)
    with pytest.raises(SalesforceNotFoundError):
        hook.request("GET", hook.v5_path("prospects/9"))


@pytest.mark.parametrize("status", [200, 400])
def test_pardot_v4_fail_body_raises_even_with_2xx(pardot, api, status) -> None:
    body = {"@attributes": {"stat": "fail", "version": 1, "err_code": 4}, "err": "Invalid prospect ID"}
    api.reply("/api/prospect/version/4/do/read/id/7", (status, body))
    hook = pardot(pardot_api_version=4)
    with pytest.raises(SalesforceApiError) as err:
        hook.request("GET", "/api/prospect/version/4/do/read/id/7")
    assert (err.value.status, err.value.error_code, err.value.message) == (status, "PARDOT_4", "Invalid prospect ID")


@pytest.mark.parametrize("status, body", [
    (429, {"code": 122, "message": "Daily API rate limit met."}),
    (400, {"@attributes": {"stat": "fail", "version": 1, "err_code": 122}, "err": "Daily API rate limit met."}),
])
def test_pardot_daily_quota_is_a_clear_limit_error_and_not_retried(pardot, api, status, body) -> None:
    api.reply("/api/v5/objects/lists", (status, body))
    hook = pardot()
    with pytest.raises(SalesforceRequestLimitError) as err:
        hook.request("GET", hook.v5_path("lists"))
    assert err.value.error_code == "REQUEST_LIMIT_EXCEEDED" and "122" in err.value.message
    assert "daily API quota" in err.value.message
    assert api.paths() == ["GET /api/v5/objects/lists"]


def test_pardot_concurrency_limit_is_retried(pardot, api) -> None:
    api.reply("/api/v5/objects/lists", (429, {"code": 66, "message": "Too many concurrent requests"}),
              (200, {"values": []}))
    hook = pardot()
    assert hook.request("GET", hook.v5_path("lists")).json() == {"values": []}
    assert api.paths() == ["GET /api/v5/objects/lists"] * 2


def test_pardot_expired_token_reauthenticates_once_against_the_emulator(pardot, api, emulator_admin) -> None:
    api.reply("/api/v5/objects/prospects",
              (401, {"code": 184, "message": "access_token is invalid, unknown, or malformed: Inactive token"}),
              (200, {"values": []}))
    hook = pardot()
    hook.request("GET", hook.v5_path("prospects"))
    first, second = (r["headers"]["Authorization"] for r in api.received)
    assert first != second and second == f"Bearer {hook.session.token.access_token}"
    assert emulator_admin.stats()["token_grants_total"] == 2


def test_pardot_token_goes_only_to_the_configured_and_salesforce_hosts(pardot, api) -> None:
    foreign = LoopbackApi("127.0.0.2")
    try:
        hook = pardot()
        hook.request("GET", f"http://127.0.0.2:{foreign.port}/api/v5/objects/prospects")
        hook.request("GET", f"http://localhost:{api.port}/api/v5/objects/prospects?nextPageToken=x")
        assert "Authorization" not in foreign.received[0]["headers"]
        assert api.received[0]["headers"]["Authorization"].startswith("Bearer ")
    finally:
        foreign.close()
    token = hook.session.token
    assert not should_authenticate("http://localhost/x", token, "https://login.salesforce.com")
    assert should_authenticate("http://localhost/x", token, "https://login.salesforce.com", {"localhost"})
    assert should_authenticate("https://pi.demo.pardot.com/api", token, "https://login.salesforce.com")


def test_pardot_test_connection(pardot, api) -> None:
    ok, message = pardot().test_connection()
    assert ok and "API v5" in message and BU in message
    assert api.received[-1]["path"] == "/api/v5/objects/prospects" and api.received[-1]["query"]["limit"] == ["1"]
    ok, message = pardot(pardot_api_version=4).test_connection()
    assert ok and api.received[-1]["path"] == "/api/prospect/version/4/do/query"
    api.reply("/api/v5/objects/prospects", (403, {"code": 89, "message": "No access to Pardot"}))
    ok, message = pardot().test_connection()
    assert not ok and "PARDOT_89" in message and "No access to Pardot" in message
    ok, message = pardot(business_unit_id="001000000000001").test_connection()
    assert not ok and "SalesforceConfigError" in message and "business_unit_id" in message


def test_pardot_bad_salesforce_credentials_fail_before_pardot(pardot, api) -> None:
    hook = pardot(consumer_secret="wrong-secret-value")
    ok, message = hook.test_connection()
    assert not ok and "SalesforceAuthError" in message and "wrong-secret-value" not in message
    assert api.received == []


# -- Desk -----------------------------------------------------------------------------------------
EMAIL, PASSWORD = "agent@example.com", "desk-pw-secret"
OAUTH1 = {"auth_type": "oauth1", "consumer_key": "desk-ck", "consumer_secret": "desk-cs-secret",
          "access_token": "desk-at", "access_token_secret": "desk-ats-secret"}


@pytest.fixture
def desk(api, monkeypatch):
    """``desk(host=..., **extra)`` -> a DeskHook on the loopback server."""

    def make(host: str | None = None, **extra: Any) -> DeskHook:
        conn = {"conn_type": "salesforce_desk", "host": host or f"http://127.0.0.1:{api.port}", "login": EMAIL,
                "password": PASSWORD, "extra": {"max_retries": 2, "retry_max_seconds": 5, **extra}}
        monkeypatch.setenv("AIRFLOW_CONN_DESK_TEST", json.dumps(conn))
        return DeskHook("desk_test")

    return make


def test_desk_basic_auth_and_paths(desk, api) -> None:
    api.reply("/api/v2/cases/1", (200, {"id": 1, "subject": "Help"}))
    hook = desk()
    assert hook.request("GET", "cases/1").json()["subject"] == "Help"
    hook.request("PATCH", "/api/v2/cases/1", json={"subject": "Updated"})
    first, second = api.received
    expected = "Basic " + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()
    assert first["headers"]["Authorization"] == second["headers"]["Authorization"] == expected
    assert first["headers"]["Accept"] == "application/json"
    assert api.paths() == ["GET /api/v2/cases/1", "PATCH /api/v2/cases/1"]
    assert json.loads(second["body"]) == {"subject": "Updated"}


def test_desk_oauth1_signature_verifies(desk, api) -> None:
    from oauthlib.oauth1.rfc5849 import signature, utils

    desk(**OAUTH1).request("GET", "cases", params={"status": "open", "page": 2})
    (got,) = api.received
    header = got["headers"]["Authorization"]
    assert header.startswith("OAuth ")
    oauth = dict(utils.parse_authorization_header(header))
    assert (oauth["oauth_consumer_key"], oauth["oauth_token"], oauth["oauth_signature_method"]) == (
        "desk-ck", "desk-at", "HMAC-SHA1")
    assert "desk-cs-secret" not in header and "desk-ats-secret" not in header
    params = signature.collect_parameters(uri_query=urlsplit(got["url"]).query, headers={"Authorization": header})
    base = signature.signature_base_string("GET", signature.base_string_uri(got["url"]),
                                           signature.normalize_parameters(params))
    expected = signature.sign_hmac_sha1(base, "desk-cs-secret", "desk-ats-secret")
    assert utils.unescape(oauth["oauth_signature"]) == expected
    assert utils.unescape(oauth["oauth_signature"]) != signature.sign_hmac_sha1(base, "desk-cs-secret", "wrong")


def test_desk_429_waits_for_rate_limit_reset_then_succeeds(desk, api) -> None:
    api.reply("/api/v2/cases", (429, {"message": "Too Many Requests"}, {"X-Rate-Limit-Reset": "1"}),
              (200, {"total_entries": 0}, {"X-Rate-Limit-Reset": "40"}))
    started = time.monotonic()
    assert desk().request("POST", "cases", json={"subject": "x"}).json() == {"total_entries": 0}
    assert 0.9 <= time.monotonic() - started < 5
    assert api.paths() == ["POST /api/v2/cases"] * 2


def test_desk_429_that_persists_is_a_limit_error(desk, api) -> None:
    api.reply("/api/v2/cases", (429, {"message": "Too Many Requests"}, {"X-Rate-Limit-Reset": "0"}))
    with pytest.raises(SalesforceRequestLimitError) as err:
        desk().request("GET", "cases")
    assert err.value.status == 429 and "Too Many Requests" in str(err.value)
    assert len(api.received) == 3  # first attempt + max_retries


def test_desk_error_bodies(desk, api) -> None:
    api.reply("/api/v2/cases", (422, {"message": "Validation Failed", "errors": {"subject": ["blank", "too_short"]}}))
    api.reply("/api/v2/cases/404", (404, {"message": "Resource Not Found"}))
    hook = desk()
    with pytest.raises(SalesforceApiError) as err:
        hook.request("POST", "cases", json={})
    assert err.value.status == 422 and err.value.fields == ["subject"]
    assert "Validation Failed" in str(err.value) and "subject: blank, too_short" in str(err.value)
    with pytest.raises(SalesforceNotFoundError, match="Resource Not Found"):
        hook.request("GET", "cases/404")


def test_desk_retries_follow_the_shared_policy(desk, api) -> None:
    api.reply("/api/v2/cases", (503, b"busy", {"Content-Type": "text/plain"}), (200, {"ok": 1}))
    api.reply("/api/v2/cases/1", (502, b"bad gateway", {"Content-Type": "text/plain"}))
    hook = desk()
    assert hook.request("GET", "cases").json() == {"ok": 1}
    with pytest.raises(SalesforceServerError):  # a POST is not replayed after an ambiguous 502
        hook.request("POST", "cases/1", json={})
    assert api.paths() == ["GET /api/v2/cases"] * 2 + ["POST /api/v2/cases/1"]


def test_desk_read_timeout(desk, api) -> None:
    api.reply("/api/v2/cases", (200, 1.0))
    with pytest.raises(SalesforceTransportError, match="ReadTimeout"):
        desk(timeout=0.2).request("POST", "cases", json={})


def test_desk_credentials_never_go_to_a_foreign_url(desk, api) -> None:
    desk().request("GET", f"http://localhost:{api.port}/api/v2/cases?page=2")
    assert "Authorization" not in api.received[0]["headers"]


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_desk_ca_bundle_is_used_despite_requests_ca_bundle(desk, salesforce_emulator, monkeypatch) -> None:
    import certifi

    # The machine-wide bundle does not know the emulator's private CA; the connection's ca_bundle does.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with pytest.raises(SalesforceAuthError) as err:  # TLS works; the emulator refuses these Desk credentials
        desk(host=salesforce_emulator.url, ca_bundle=salesforce_emulator.ca_bundle).request("GET", "users/me")
    assert err.value.status == 401
    with pytest.raises(SalesforceTransportError, match="SSLError"):
        desk(host=salesforce_emulator.url).request("GET", "users/me")
    with pytest.raises(SalesforceAuthError):  # verify off: no certificate check at all
        desk(host=salesforce_emulator.url, verify=False).request("GET", "users/me")


def test_desk_test_connection(desk, api) -> None:
    api.reply("/api/v2/users/me", (200, {"name": "Agent", "email": EMAIL}))
    ok, message = desk().test_connection()
    assert ok and EMAIL in message and f"127.0.0.1:{api.port}" in message
    api.reply("/api/v2/users/me", (401, {"message": "Unauthorized"}))
    ok, message = desk().test_connection()
    assert not ok and "401" in message and "Unauthorized" in message and PASSWORD not in message
    ok, message = desk(auth_type="oauth1").test_connection()
    assert not ok and "SalesforceConfigError" in message and "consumer_key" in message


def test_rate_limit_reset_header_only_sets_the_wait_of_a_429() -> None:
    from airflow_provider_salesforce_suite.core.retry import classify_transient, parse_retry_after

    assert parse_retry_after({"X-Rate-Limit-Reset": "12"}, 429) == 12
    assert 25 < parse_retry_after({"x-rate-limit-reset": str(int(time.time()) + 30)}, 429) <= 30  # epoch form
    assert parse_retry_after({"X-Rate-Limit-Reset": "12"}, 503) is None  # every Desk reply carries it
    assert parse_retry_after({"Retry-After": "3", "X-Rate-Limit-Reset": "12"}, 429) == 3
    assert parse_retry_after({"X-Rate-Limit-Reset": "soon"}, 429) is None
    assert classify_transient(429, {}, b'{"message": "Too Many Requests"}', method="POST") == "HTTP 429"
    daily = b'{"code": 122, "message": "Daily API rate limit met."}'
    assert classify_transient(429, {}, daily, method="GET") is None


# -- Airflow sees both hooks ----------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:ProvidersManager.hooks is deprecated")
def test_providers_manager_resolves_pardot_and_desk_hooks() -> None:
    from airflow.providers_manager import ProvidersManager

    hooks = ProvidersManager().hooks
    pardot_info, desk_info = hooks["salesforce_pardot"], hooks["salesforce_desk"]
    assert pardot_info is not None and desk_info is not None
    assert pardot_info.hook_class_name.endswith("hooks.pardot.PardotHook")
    assert (pardot_info.connection_id_attribute_name, desk_info.connection_id_attribute_name) == (
        "pardot_conn_id", "desk_conn_id")
    assert (PardotHook.default_conn_name, DeskHook.default_conn_name) == (
        "salesforce_pardot_default", "salesforce_desk_default")
