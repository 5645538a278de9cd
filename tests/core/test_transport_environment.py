"""The session reads the environment's proxies and CA bundle once per host, and still honours them."""

from __future__ import annotations

import socket

import pytest
import requests

from airflow_provider_salesforce_suite.core.config import SalesforceConnectionConfig
from airflow_provider_salesforce_suite.core.errors import SalesforceTransportError
from airflow_provider_salesforce_suite.core.transport import SalesforceSession
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

ENV = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "ALL_PROXY", "all_proxy",
       "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("env", [
    {},
    {"HTTPS_PROXY": "http://proxy.example:3128", "HTTP_PROXY": "http://plain.example:80"},
    {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "login.example,.salesforce.com"},
    {"REQUESTS_CA_BUNDLE": "/etc/ssl/a.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/b.pem", "all_proxy": "socks5://s.example:1080"},
])
@pytest.mark.parametrize("call", [
    ({}, None, True, None),
    ({}, True, "/own/ca.pem", ("c.pem", "k.pem")),
    ({"https": "http://own.example:8080"}, False, None, None),
    ({"https": None, "no_proxy": "acme.my.salesforce.com"}, None, False, None),
])
@pytest.mark.parametrize("session_proxies", [{}, {"https": "http://conn.example:9000", "http": None}])
def test_settings_match_requests_own_merge(clean_env, env, call, session_proxies) -> None:
    """Same result as ``requests.Session`` for every mix of environment, call and session settings,
    on the first call to a host and on later ones (served from what the session read)."""
    for name, value in env.items():
        clean_env.setenv(name, value)
    ours = SalesforceSession(SalesforceConnectionConfig("sf_env", auth_type="session", session_id="not-used",
                                                         instance_url="https://acme.my.salesforce.com"))
    theirs = requests.Session()
    theirs.verify = ours.verify
    for session in (ours, theirs):
        session.proxies.update(session_proxies)
    proxies, stream, verify, cert = call
    for url in ("https://acme.my.salesforce.com/services/data/v64.0/jobs/ingest/1",
                "https://acme.my.salesforce.com/services/data/v64.0/limits",
                "https://login.example/services/oauth2/token", "http://plain.host:8080/x"):
        for _ in range(2):
            mine = ours.merge_environment_settings(url, dict(proxies), stream, verify, cert)
            expected = theirs.merge_environment_settings(url, dict(proxies), stream, verify, cert)
            assert mine == {**expected, "proxies": dict(expected["proxies"])}, url


def test_environment_proxy_is_used(sf_conn, clean_env) -> None:
    """A proxy in the environment carries the calls; ``NO_PROXY`` still exempts the host."""
    clean_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    hook = SalesforceBaseHook(sf_conn(extra={"max_retries": 0}))
    with pytest.raises(SalesforceTransportError):
        hook.request("GET", "/services/data/")
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    hook = SalesforceBaseHook(sf_conn("sf_no_proxy", extra={"max_retries": 0}))
    for _ in range(2):
        assert hook.request("GET", "/services/data/").status_code == 200


def test_environment_ca_bundle_is_used(sf_conn, clean_env, salesforce_emulator) -> None:
    """With ``verify`` true and no ``ca_bundle``, ``REQUESTS_CA_BUNDLE`` decides whom to trust."""
    if not salesforce_emulator.ca_bundle:
        pytest.skip("the emulator serves plain HTTP")
    extra = {"ca_bundle": None, "verify": True, "max_retries": 0}
    clean_env.setenv("REQUESTS_CA_BUNDLE", salesforce_emulator.ca_bundle)
    hook = SalesforceBaseHook(sf_conn(extra=extra))
    for _ in range(2):
        assert hook.request("GET", "/services/data/").status_code == 200
    clean_env.delenv("REQUESTS_CA_BUNDLE")
    hook = SalesforceBaseHook(sf_conn("sf_no_bundle", extra=extra))
    with pytest.raises(SalesforceTransportError):
        hook.request("GET", "/services/data/")
