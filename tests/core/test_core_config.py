"""SalesforceConnectionConfig: every validation rule, extras handling, and a secret-free repr."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from airflow_provider_salesforce_suite.core.config import (
    AUTH_TYPES,
    DEFAULT_API_VERSION,
    SalesforceConnectionConfig,
)
from airflow_provider_salesforce_suite.core.errors import SalesforceConfigError

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEabc\n-----END PRIVATE KEY-----\n"
OAUTH = {"consumer_key": "ck-value", "consumer_secret": "cs-secret-value"}


def conn(extra: dict | None = None, *, host: str | None = "login", login: str | None = "u@example.com",
         password: str | None = "pw-secret-value") -> Connection:
    return Connection(conn_id="sf_test", conn_type="salesforce_suite", host=host, login=login,
                      password=password, extra=json.dumps(extra or {}))


def build(extra: dict | None = None, **kw) -> SalesforceConnectionConfig:
    return SalesforceConnectionConfig.from_connection(conn(extra, **kw))


def test_defaults_for_password_flow() -> None:
    cfg = build(OAUTH)
    assert cfg.auth_type == "password"
    assert cfg.login_url == "https://login.salesforce.com"
    assert cfg.api_version == DEFAULT_API_VERSION == "64.0"
    assert (cfg.timeout, cfg.connect_timeout, cfg.limit_warning_threshold) == (120, 10, 0.8)
    assert cfg.verify is True and cfg.requests_verify is True


@pytest.mark.parametrize(
    "host, expected",
    [
        ("login", "https://login.salesforce.com"),
        ("test", "https://test.salesforce.com"),
        ("acme.my.salesforce.com", "https://acme.my.salesforce.com"),
        ("https://acme.my.salesforce.com/some/path", "https://acme.my.salesforce.com"),
        ("https://127.0.0.1:8555", "https://127.0.0.1:8555"),
        (None, "https://login.salesforce.com"),
    ],
)
def test_host_normalisation(host, expected) -> None:
    assert build(OAUTH, host=host).login_url == expected


def test_plain_http_rejected_except_loopback() -> None:
    with pytest.raises(SalesforceConfigError, match="https"):
        build(OAUTH, host="http://acme.my.salesforce.com")
    assert build(OAUTH, host="http://127.0.0.1:9000").login_url == "http://127.0.0.1:9000"


def test_ui_prefixed_extras_accepted_and_plain_keys_win() -> None:
    cfg = build({"extra__salesforce_suite__consumer_key": "from-ui", "extra__salesforce_suite__consumer_secret": "s" * 8,
                 "extra__salesforce_suite__api_version": "", "api_version": "61.0"})
    assert cfg.consumer_key == "from-ui" and cfg.api_version == "61.0"
    cfg = build({**OAUTH, "extra__salesforce_suite__consumer_key": "ui-key"})
    assert cfg.consumer_key == "ck-value"


def test_unknown_auth_type_lists_valid_ones() -> None:
    with pytest.raises(SalesforceConfigError) as err:
        build({"auth_type": "kerberos"})
    for name in AUTH_TYPES:
        assert name in str(err.value)


@pytest.mark.parametrize(
    "extra, login, password, message",
    [
        ({"consumer_secret": "x" * 8}, "u", "p" * 8, "auth_type 'password' needs consumer_key"),
        ({"consumer_key": "k"}, "u", "p" * 8, "auth_type 'password' needs consumer_secret"),
        (OAUTH, None, "p" * 8, "auth_type 'password' needs username"),
        (OAUTH, "u", None, "auth_type 'password' needs password"),
        ({"auth_type": "jwt", "consumer_key": "k"}, "u", None,
         "auth_type 'jwt' needs a private key (extra 'private_key' or 'private_key_file')"),
        ({"auth_type": "jwt", "private_key": PEM}, "u", None, "auth_type 'jwt' needs consumer_key"),
        ({"auth_type": "jwt", "consumer_key": "k", "private_key": PEM}, None, None, "auth_type 'jwt' needs username"),
        ({"auth_type": "jwt", "consumer_key": "k", "private_key": "not a pem"}, "u", None, "PEM"),
        ({"auth_type": "client_credentials", "consumer_key": "k"}, None, None,
         "auth_type 'client_credentials' needs consumer_secret"),
        ({"auth_type": "refresh_token", "consumer_key": "k"}, None, None, "auth_type 'refresh_token' needs refresh_token"),
        ({"auth_type": "refresh_token", "refresh_token": "r" * 10}, None, None, "auth_type 'refresh_token' needs consumer_key"),
        ({"auth_type": "soap_login"}, "u", None, "auth_type 'soap_login' needs password"),
    ],
)
def test_missing_fields_are_named(extra, login, password, message) -> None:
    with pytest.raises(SalesforceConfigError) as err:
        build(extra, login=login, password=password)
    assert message in str(err.value)


def test_session_needs_session_id_and_instance_url_or_host() -> None:
    with pytest.raises(SalesforceConfigError, match=r"needs session_id and instance_url \(or host\)"):
        build({"auth_type": "session"}, host=None)
    with pytest.raises(SalesforceConfigError, match="needs session_id and instance_url"):
        build({"auth_type": "session", "session_id": "00Dxx!abc"}, host=None)
    cfg = build({"auth_type": "session", "session_id": "00Dxx!abcdef"}, host="https://acme.my.salesforce.com")
    assert cfg.instance_url == "https://acme.my.salesforce.com"
    cfg = build({"auth_type": "session", "session_id": "00Dxx!abcdef", "instance_url": "https://b.my.salesforce.com"})
    assert cfg.instance_url == "https://b.my.salesforce.com"


def test_private_key_and_file_are_contradictory(tmp_path) -> None:
    key = tmp_path / "k.pem"
    key.write_text(PEM)
    with pytest.raises(SalesforceConfigError, match="contradictory"):
        build({"auth_type": "jwt", "consumer_key": "k", "private_key": PEM, "private_key_file": str(key)})
    cfg = build({"auth_type": "jwt", "consumer_key": "k", "private_key_file": str(key)})
    assert cfg.private_key == PEM


def test_unreadable_private_key_file_named(tmp_path) -> None:
    with pytest.raises(SalesforceConfigError, match="private_key_file"):
        build({"auth_type": "jwt", "consumer_key": "k", "private_key_file": str(tmp_path / "missing.pem")})


def test_one_line_pem_from_ui_is_unescaped() -> None:
    cfg = build({"auth_type": "jwt", "consumer_key": "k", "private_key": PEM.replace("\n", "\\n")})
    assert cfg.private_key == PEM


@pytest.mark.parametrize("version", ["64", "v64.0", "64.0.1", "latest", ""])
def test_api_version_shape(version) -> None:
    if version == "":
        assert build({**OAUTH, "api_version": version}).api_version == "64.0"  # blank = default
        return
    with pytest.raises(SalesforceConfigError, match='api_version must look like "64.0"'):
        build({**OAUTH, "api_version": version})


def test_api_version_override_argument() -> None:
    assert SalesforceConnectionConfig.from_connection(conn(OAUTH), api_version="60.0").api_version == "60.0"


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"limit_warning_threshold": 1.5}, "limit_warning_threshold"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 2.5}, "max_retries"),
        ({"retry_max_seconds": 0}, "retry_max_seconds"),
        ({"verify": "maybe"}, "verify"),
        ({"proxies": "not json"}, "proxies"),
        ({"proxies": {"https": 3128}}, "proxies"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle"),
    ],
)
def test_bad_transport_settings_named(extra, field) -> None:
    with pytest.raises(SalesforceConfigError, match=field):
        build({**OAUTH, **extra})


def test_transport_settings_parsed(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    cfg = build({**OAUTH, "proxies": '{"https": "http://proxy:3128"}', "verify": "false", "timeout": "30",
                 "connect_timeout": 3, "max_retries": "2", "retry_max_seconds": 5, "ca_bundle": str(ca)})
    assert cfg.proxies == {"https": "http://proxy:3128"}
    assert cfg.verify is False and cfg.requests_verify is False
    assert (cfg.timeout, cfg.connect_timeout, cfg.max_retries, cfg.retry_max_seconds) == (30, 3, 2, 5)
    assert build({**OAUTH, "ca_bundle": str(ca)}).requests_verify == str(ca)


def test_repr_never_shows_secrets() -> None:
    cfg = build({**OAUTH, "security_token": "tok-secret-value", "proxies": {"https": "http://bob:proxypass@proxy:1"}})
    for text in (repr(cfg), str(cfg), f"{cfg}"):
        for secret in ("pw-secret-value", "cs-secret-value", "tok-secret-value", "proxypass"):
            assert secret not in text
        assert "ck-value" in text and "password='***'" in text


def test_fingerprint_changes_with_any_credential() -> None:
    a = build(OAUTH)
    assert a.fingerprint() == build(OAUTH).fingerprint()
    assert a.fingerprint() != build(OAUTH, password="other-password").fingerprint()
    assert a.fingerprint() not in repr(a)


def test_pubsub_endpoint_default_and_forms() -> None:
    assert build(OAUTH).pubsub_endpoint == "api.pubsub.salesforce.com:7443"
    assert build({**OAUTH, "pubsub_endpoint": "https://127.0.0.1:50051/"}).pubsub_endpoint == "127.0.0.1:50051"
    assert build({**OAUTH, "pubsub_endpoint": "api.deu.pubsub.salesforce.com:7443"}).pubsub_endpoint == (
        "api.deu.pubsub.salesforce.com:7443")


@pytest.mark.parametrize("value", ["api.pubsub.salesforce.com", "host:port", "host:0", ":7443", "a/b:1"])
def test_pubsub_endpoint_needs_host_and_port(value) -> None:
    with pytest.raises(SalesforceConfigError, match="pubsub_endpoint must be host:port"):
        build({**OAUTH, "pubsub_endpoint": value})
