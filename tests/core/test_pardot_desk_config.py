"""PardotConnectionConfig and DeskConnectionConfig: every validation rule, both UI prefixes, safe reprs."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from airflow_provider_salesforce_suite.core.config import (
    PARDOT_DEMO_HOST,
    PARDOT_HOST,
    DeskConnectionConfig,
    PardotConnectionConfig,
    SalesforceConnectionConfig,
)
from airflow_provider_salesforce_suite.core.errors import SalesforceConfigError

BU15 = "0Uv000000000001"
BU18 = "0Uv000000000001AAA"
OAUTH = {"consumer_key": "ck-value", "consumer_secret": "cs-secret-value"}
PARDOT = {**OAUTH, "business_unit_id": BU18}
OAUTH1 = {"auth_type": "oauth1", "consumer_key": "desk-ck", "consumer_secret": "desk-cs-secret",
          "access_token": "desk-at-secret", "access_token_secret": "desk-ats-secret"}


def pardot(extra: dict, **fields) -> PardotConnectionConfig:
    values = {"host": "login", "login": "u@example.com", "password": "pw-secret-value", **fields}
    conn = Connection(conn_id="pd", conn_type="salesforce_pardot", extra=json.dumps(extra), **values)
    return PardotConnectionConfig.from_connection(conn)


def desk(extra: dict | None = None, **fields) -> DeskConnectionConfig:
    values = {"host": "https://acme.desk.com", "login": "agent@example.com", "password": "desk-pw-secret", **fields}
    conn = Connection(conn_id="dk", conn_type="salesforce_desk", extra=json.dumps(extra or {}), **values)
    return DeskConnectionConfig.from_connection(conn)


# -- Pardot ---------------------------------------------------------------------------------------
def test_pardot_defaults_and_salesforce_part_parsed_with_the_same_rules() -> None:
    cfg = pardot({**PARDOT, "timeout": "30", "api_version": "62.0"})
    assert (cfg.business_unit_id, cfg.pardot_host, cfg.pardot_api_version) == (BU18, PARDOT_HOST, 5)
    assert isinstance(cfg.salesforce, SalesforceConnectionConfig)
    assert cfg.salesforce.login_url == "https://login.salesforce.com" and cfg.salesforce.auth_type == "password"
    assert cfg.salesforce.timeout == 30 and cfg.salesforce.api_version == "62.0"
    assert cfg.conn_id == cfg.salesforce.conn_id == "pd"


def test_pardot_reads_its_own_ui_prefix_for_every_field() -> None:
    p = "extra__salesforce_pardot__"
    cfg = pardot({f"{p}consumer_key": "ck-ui", f"{p}consumer_secret": "cs-ui-secret", f"{p}business_unit_id": BU15,
                  f"{p}pardot_host": "demo", f"{p}pardot_api_version": "4", f"{p}verify": "false"})
    assert cfg.salesforce.consumer_key == "ck-ui" and cfg.salesforce.verify is False
    assert (cfg.business_unit_id, cfg.pardot_host, cfg.pardot_api_version) == (BU15, PARDOT_DEMO_HOST, 4)


def test_pardot_plain_key_wins_over_prefixed_and_suite_prefix_is_not_read() -> None:
    cfg = pardot({**PARDOT, "extra__salesforce_pardot__business_unit_id": "0Uv999999999999"})
    assert cfg.business_unit_id == BU18
    with pytest.raises(SalesforceConfigError, match="consumer_key"):
        pardot({"extra__salesforce_suite__consumer_key": "ck", "consumer_secret": "cs", "business_unit_id": BU18})


@pytest.mark.parametrize("extra", [{}, {"business_unit_id": ""}, {"business_unit_id": "   "}])
def test_pardot_business_unit_id_required(extra) -> None:
    with pytest.raises(SalesforceConfigError, match="business_unit_id"):
        pardot({**OAUTH, **extra})


@pytest.mark.parametrize("bad", ["001000000000001", "0Uv00000000001", "0Uv0000000000011", "0Uv000000000001AAAA",
                                 "0Uv00000000000!", "0uv000000000001", 12345])
def test_pardot_business_unit_id_must_look_like_a_business_unit(bad) -> None:
    with pytest.raises(SalesforceConfigError, match="business_unit_id .*0Uv"):
        pardot({**OAUTH, "business_unit_id": bad})


@pytest.mark.parametrize("host, expected", [
    ("demo", PARDOT_DEMO_HOST), ("DEMO", PARDOT_DEMO_HOST), ("production", PARDOT_HOST), ("", PARDOT_HOST),
    ("pi.pardot.com", PARDOT_HOST), ("https://pi.demo.pardot.com/api/v5", PARDOT_DEMO_HOST),
    ("http://127.0.0.1:8600", "http://127.0.0.1:8600"), ("http://localhost:8600", "http://localhost:8600"),
    ("https://pardot.example.org:8443", "https://pardot.example.org:8443"),
])
def test_pardot_host_aliases_and_urls(host, expected) -> None:
    assert pardot({**PARDOT, "pardot_host": host}).pardot_host == expected


@pytest.mark.parametrize("host, match", [
    ("http://pi.pardot.com", "https"), ("ftp://pi.pardot.com", "https"), ("https://", "not a URL"),
    ("login", "Salesforce login alias"), ("test", "Salesforce login alias"),
])
def test_pardot_host_rejections(host, match) -> None:
    with pytest.raises(SalesforceConfigError, match=f"pardot_host.*{match}"):
        pardot({**PARDOT, "pardot_host": host})


@pytest.mark.parametrize("version, expected", [("5", 5), (5, 5), ("4", 4), (4, 4), ("v4", 4), (" 5 ", 5)])
def test_pardot_api_version_allowed(version, expected) -> None:
    assert pardot({**PARDOT, "pardot_api_version": version}).pardot_api_version == expected


@pytest.mark.parametrize("version", ["3", 6, "5.0", "latest", True])
def test_pardot_api_version_rejected(version) -> None:
    with pytest.raises(SalesforceConfigError, match="pardot_api_version must be 5 or 4"):
        pardot({**PARDOT, "pardot_api_version": version})


def test_pardot_constructor_validates_too() -> None:
    sf = pardot(PARDOT).salesforce
    with pytest.raises(SalesforceConfigError, match="pardot_api_version"):
        PardotConnectionConfig(salesforce=sf, business_unit_id=BU15, pardot_api_version=3)
    with pytest.raises(SalesforceConfigError, match="business_unit_id"):
        PardotConnectionConfig(salesforce=sf, business_unit_id="nope")


def test_pardot_salesforce_rules_apply() -> None:
    with pytest.raises(SalesforceConfigError, match="consumer_secret"):
        pardot({"consumer_key": "ck", "business_unit_id": BU18})
    with pytest.raises(SalesforceConfigError, match="unknown auth_type"):
        pardot({**PARDOT, "auth_type": "basic"})


def test_pardot_repr_has_no_secrets_and_config_is_frozen() -> None:
    cfg = pardot({**PARDOT, "proxies": {"https": "http://user:proxypass@proxy:3128"}})
    text = repr(cfg)
    assert BU18 in text and PARDOT_HOST in text
    for secret in ("pw-secret-value", "cs-secret-value", "proxypass"):
        assert secret not in text
    with pytest.raises(AttributeError):
        cfg.business_unit_id = BU15  # type: ignore[misc]


# -- Desk -----------------------------------------------------------------------------------------
def test_desk_basic_defaults() -> None:
    cfg = desk()
    assert (cfg.site_url, cfg.auth_type, cfg.email, cfg.password) == (
        "https://acme.desk.com", "basic", "agent@example.com", "desk-pw-secret")
    assert (cfg.timeout, cfg.connect_timeout, cfg.max_retries, cfg.retry_max_seconds) == (120, 10, 4, 60)
    assert cfg.verify is True and cfg.requests_verify is True and cfg.proxies is None


@pytest.mark.parametrize("host, expected", [
    ("acme.desk.com", "https://acme.desk.com"), ("https://acme.desk.com/api/v2/", "https://acme.desk.com"),
    ("http://127.0.0.1:9000", "http://127.0.0.1:9000"), ("https://support.example.org:8443", "https://support.example.org:8443"),
])
def test_desk_site_url(host, expected) -> None:
    assert desk(host=host).site_url == expected


@pytest.mark.parametrize("host, match", [
    (None, "needs the site URL"), ("", "needs the site URL"), ("http://acme.desk.com", "https"),
    ("login", "Salesforce login alias"), ("https://", "not a URL"),
])
def test_desk_site_url_rejections(host, match) -> None:
    with pytest.raises(SalesforceConfigError, match=match):
        desk(host=host)


@pytest.mark.parametrize("fields, missing", [
    ({"login": None}, "email"), ({"login": " "}, "email"), ({"password": None}, "password"),
    ({"login": None, "password": None}, "email .*password"),
])
def test_desk_basic_needs_email_and_password(fields, missing) -> None:
    with pytest.raises(SalesforceConfigError, match=f"'basic' needs {missing}"):
        desk(**fields)


def test_desk_oauth1_and_its_ui_prefix() -> None:
    cfg = desk(OAUTH1, login=None, password=None)
    assert cfg.auth_type == "oauth1" and cfg.access_token_secret == "desk-ats-secret"
    p = "extra__salesforce_desk__"
    cfg = desk({f"{p}{k}": v for k, v in OAUTH1.items()} | {f"{p}timeout": "15", f"{p}verify": "no"})
    assert cfg.auth_type == "oauth1" and cfg.consumer_key == "desk-ck" and cfg.timeout == 15 and cfg.verify is False


@pytest.mark.parametrize("name", ["consumer_key", "consumer_secret", "access_token", "access_token_secret"])
def test_desk_oauth1_needs_all_four(name) -> None:
    with pytest.raises(SalesforceConfigError, match=f"'oauth1' needs {name}"):
        desk({**OAUTH1, name: ""})


def test_desk_unknown_auth_type() -> None:
    with pytest.raises(SalesforceConfigError, match="unknown Desk auth_type 'password'.*basic, oauth1"):
        desk({"auth_type": "password"})


def test_desk_transport_settings(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    cfg = desk({"ca_bundle": str(ca), "proxies": '{"https": "http://proxy:3128"}', "timeout": 5,
                "connect_timeout": "2", "max_retries": "0", "retry_max_seconds": 3})
    assert cfg.requests_verify == str(ca) and cfg.proxies == {"https": "http://proxy:3128"}
    assert (cfg.timeout, cfg.connect_timeout, cfg.max_retries, cfg.retry_max_seconds) == (5, 2, 0, 3)


@pytest.mark.parametrize("extra, match", [
    ({"ca_bundle": "/no/such/ca.pem"}, "ca_bundle .* is not a file"), ({"verify": "maybe"}, "verify must be a boolean"),
    ({"timeout": "0"}, "timeout must be > 0"), ({"timeout": "soon"}, "timeout must be a number"),
    ({"max_retries": "-1"}, "max_retries must be >= 0"), ({"proxies": "not json"}, "proxies must be a JSON object"),
])
def test_desk_transport_rejections(extra, match) -> None:
    with pytest.raises(SalesforceConfigError, match=match):
        desk(extra)


def test_desk_repr_has_no_secrets_and_secrets_are_masked(monkeypatch) -> None:
    masked = []
    monkeypatch.setattr("airflow_provider_salesforce_suite.core.config.mask", lambda s, n=None, **_: masked.append(s))
    cfg = desk({**OAUTH1, "proxies": {"https": "http://u:proxypass@proxy:3128"}})
    text = repr(cfg) + str(cfg)
    for secret in ("desk-pw-secret", "desk-cs-secret", "desk-at-secret", "desk-ats-secret", "proxypass"):
        assert secret not in text
    assert "desk-ck" in text and "password='***'" in text and "DeskConnectionConfig(" in text
    assert set(masked) >= {"desk-pw-secret", "desk-cs-secret", "desk-at-secret", "desk-ats-secret"}
