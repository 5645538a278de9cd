"""Connections of the official provider's type ``salesforce``, with its extra names (plain and the
``extra__salesforce__`` prefixed form older Airflow forms wrote), authenticate every flow against
the emulator through our hooks; what cannot be read is refused by name, without secrets."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_salesforce_suite.core.config import SalesforceConnectionConfig
from airflow_provider_salesforce_suite.core.errors import SalesforceAuthError, SalesforceConfigError
from airflow_provider_salesforce_suite.emulator.config import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_USERNAME,
    ConnectedAppConfig,
    EmulatorConfig,
    UserConfig,
)
from airflow_provider_salesforce_suite.emulator.server import EmulatorServer
from airflow_provider_salesforce_suite.emulator.store import ORG_ID
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

USER, PASSWORD, TOKEN = "migrated@example.com", "Migr4ted-Passw0rd", "S3cTok3nMigrated"
JWT_KEY = "migrated-jwt-app"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory, jwt_key_pair):
    """An org with a user who needs a security token and a JWT connected app, beside the defaults."""
    config = EmulatorConfig()
    config.add_user(UserConfig(username=USER, password=PASSWORD, security_token=TOKEN))
    config.add_connected_app(ConnectedAppConfig(name="JWT", consumer_key=JWT_KEY, consumer_secret="unused",
                                                certificates=[jwt_key_pair[1]], run_as=DEFAULT_USERNAME))
    with EmulatorServer(cert_dir=tmp_path_factory.mktemp("official-certs"), config=config) as server:
        yield server


@pytest.fixture
def official(emulator, monkeypatch):
    """``official(login=..., password=..., prefixed=False, **extras)`` -> the id of a ``salesforce``
    connection (``AIRFLOW_CONN_*`` JSON) whose ``domain`` is the emulator's URL."""
    emulator.reset()
    made = iter(range(1000))

    def make(*, login: str | None = None, password: str | None = None, prefixed: bool = False,
             **extras: Any) -> str:
        extras = {"domain": emulator.url, "ca_bundle": str(emulator.ca_bundle), **extras}
        if prefixed:
            extras = {f"extra__salesforce__{key}": value for key, value in extras.items()}
        conn = {"conn_type": "salesforce", "login": login, "password": password, "extra": extras}
        conn_id = f"official_{next(made)}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({k: v for k, v in conn.items() if v}))
        return conn_id

    return make


def _soap_logins(server: EmulatorServer) -> int:
    return sum(n for key, n in server.state.stats.snapshot()["requests"].items() if key.startswith("POST /services/Soap/u/"))


def _grants(server: EmulatorServer) -> dict[str, int]:
    return server.state.stats.snapshot()["token_grants"]


def _limits(hook: SalesforceBaseHook) -> int:
    return hook.request("GET", hook.data_url("limits")).status_code


# -- one test per auth flow ----------------------------------------------------------------------
@pytest.mark.parametrize("prefixed", [False, True], ids=["plain", "extra__salesforce__"])
def test_password_and_security_token_log_in_as_the_official_provider_does(official, emulator, prefixed) -> None:
    hook = SalesforceRestHook(official(login=USER, password=PASSWORD, security_token=TOKEN, prefixed=prefixed))
    assert hook.config.auth_type == "soap_login"
    assert hook.create("Account", {"Name": "Through SOAP login"})
    assert _soap_logins(emulator) == 1 and _grants(emulator) == {}


def test_a_wrong_security_token_is_refused_without_showing_it(official, emulator) -> None:
    hook = SalesforceBaseHook(official(login=USER, password=PASSWORD, security_token="WrongTok3nValue"))
    with pytest.raises(SalesforceAuthError, match="INVALID_LOGIN") as err:
        _limits(hook)
    assert _soap_logins(emulator) == 1  # a login fault is final: not retried as a bare HTTP 500
    assert PASSWORD not in str(err.value) and "WrongTok3nValue" not in str(err.value)


def test_password_with_a_connected_app_goes_through_oauth(official, emulator) -> None:
    hook = SalesforceBaseHook(official(login=USER, password=PASSWORD, security_token=TOKEN,
                                       consumer_key=DEFAULT_CONSUMER_KEY, consumer_secret=DEFAULT_CONSUMER_SECRET))
    assert hook.config.auth_type == "password"
    assert _limits(hook) == 200
    assert _grants(emulator) == {"password": 1} and _soap_logins(emulator) == 0


@pytest.mark.parametrize("key_in", ["private_key_file_path", "private_key"])
def test_jwt_bearer_with_the_official_key_extras(official, emulator, jwt_key_pair, tmp_path, key_in) -> None:
    key_file = tmp_path / "jwt.key"
    key_file.write_text(jwt_key_pair[0])
    key = str(key_file) if key_in == "private_key_file_path" else jwt_key_pair[0]
    hook = SalesforceBaseHook(official(login=DEFAULT_USERNAME, consumer_key=JWT_KEY, **{key_in: key}))
    assert hook.config.auth_type == "jwt"
    assert _limits(hook) == 200
    assert _grants(emulator) == {"urn:ietf:params:oauth:grant-type:jwt-bearer": 1}


def test_client_credentials_with_a_consumer_key_and_secret_alone(official, emulator) -> None:
    hook = SalesforceBaseHook(official(consumer_key=DEFAULT_CONSUMER_KEY, consumer_secret=DEFAULT_CONSUMER_SECRET))
    assert hook.config.auth_type == "client_credentials"
    assert _limits(hook) == 200
    assert _grants(emulator) == {"client_credentials": 1}


@pytest.mark.parametrize("where", ["instance_url", "instance"])
def test_direct_session_with_instance_or_instance_url(official, emulator, where) -> None:
    session = SalesforceBaseHook(official(login=USER, password=PASSWORD, security_token=TOKEN)).session.token
    value = session.instance_url if where == "instance_url" else session.instance_url.split("://", 1)[1]
    hook = SalesforceBaseHook(official(session_id=session.access_token, **{where: value}))
    assert hook.config.auth_type == "session" and hook.config.instance_url == session.instance_url
    assert _limits(hook) == 200
    assert _soap_logins(emulator) == 1  # only the login that made the session


@pytest.mark.parametrize("length", [18, 15])
def test_ip_filtering_login_with_the_organization_id(official, emulator, length) -> None:
    assert emulator.state.org_id == ORG_ID
    org_id = ORG_ID[:length]
    hook = SalesforceBaseHook(official(login=DEFAULT_USERNAME, password="emulator", organization_id=org_id))
    assert hook.config.auth_type == "soap_login"
    assert _limits(hook) == 200


def test_a_login_scoped_to_another_org_is_refused(official) -> None:
    hook = SalesforceBaseHook(official(login=DEFAULT_USERNAME, password="emulator",
                                       organization_id="00D000000000099"))  # a well-formed id, not this org's
    with pytest.raises(SalesforceAuthError, match="INVALID_LOGIN"):
        _limits(hook)


def test_a_uri_connection_of_the_official_type(emulator, monkeypatch) -> None:
    from urllib.parse import quote

    emulator.reset()
    query = f"security_token={TOKEN}&domain={quote(emulator.url, safe='')}&ca_bundle={quote(str(emulator.ca_bundle), safe='')}"
    monkeypatch.setenv("AIRFLOW_CONN_OFFICIAL_URI", f"salesforce://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@?{query}")
    hook = SalesforceBaseHook("official_uri")
    assert (hook.config.auth_type, hook.config.login_url) == ("soap_login", emulator.url)
    assert _limits(hook) == 200


def test_version_proxies_and_our_own_extras_are_honoured(official) -> None:
    hook = SalesforceBaseHook(official(login=USER, password=PASSWORD, security_token=TOKEN, version="58.0",
                                       proxies='{"ftp": "http://proxy.invalid:3128"}', timeout=30))
    assert (hook.api_version, hook.config.proxies, hook.config.timeout) == ("58.0", {"ftp": "http://proxy.invalid:3128"}, 30)
    assert hook.request("GET", hook.data_url("limits")).url.endswith("/services/data/v58.0/limits")


# -- the mapping without a server ----------------------------------------------------------------
def _config(extra: dict[str, Any], *, host: str | None = None, login: str | None = "u@example.com",
            password: str | None = "pw-Secret-1") -> SalesforceConnectionConfig:
    conn = SimpleNamespace(conn_id="c", conn_type="salesforce", host=host, port=None, login=login,
                           password=password, extra_dejson=extra)
    return SalesforceConnectionConfig.from_connection(conn)


@pytest.mark.parametrize(("domain", "url"), [
    (None, "https://login.salesforce.com"), ("login", "https://login.salesforce.com"),
    ("test", "https://test.salesforce.com"), ("acme.my", "https://acme.my.salesforce.com"),
    ("acme--uat.sandbox.my", "https://acme--uat.sandbox.my.salesforce.com"),
    ("acme.my.salesforce.com", "https://acme.my.salesforce.com"),
    # bench/official_provider.py's trick that points simple-salesforce at the emulator
    ("127.0.0.1:8555/services/Soap/u/64.0#", "https://127.0.0.1:8555"), ("https://acme.my.salesforce.com/", "https://acme.my.salesforce.com"),
])
def test_domain_becomes_the_login_url(domain, url) -> None:
    assert _config({"security_token": "t", "domain": domain}).login_url == url


def test_the_official_default_connection_of_a_sandbox() -> None:
    config = _config({"extra__salesforce__security_token": "t", "extra__salesforce__domain": "test",
                      "extra__salesforce__version": "", "extra__salesforce__client_id": "my-app"})
    assert (config.auth_type, config.login_url, config.api_version) == ("soap_login", "https://test.salesforce.com", "64.0")


def test_an_explicit_auth_type_wins_over_the_inferred_one() -> None:
    config = _config({"auth_type": "password", "consumer_key": "k", "consumer_secret": "s", "security_token": "t"})
    assert config.auth_type == "password" and config.security_token == "t"


@pytest.mark.parametrize(("extra", "host", "message"), [
    ({"version": "58.0", "api_version": "60.0"}, None, "'api_version' and 'version'"),
    ({"private_key_file_path": "/a.key", "private_key_file": "/b.key"}, None, "'private_key_file' and 'private_key_file_path'"),
    ({"instance": "https://na1.salesforce.com", "instance_url": "https://na2.salesforce.com", "session_id": "x"}, None,
     "'instance_url' and 'instance'"),
    ({"private_key_file_path": "/a.key", "private_key": "-----BEGIN PRIVATE KEY-----"}, None,
     "extras 'private_key' and 'private_key_file' are contradictory"),
    ({"domain": "test"}, "https://acme.my.salesforce.com", "host 'https://acme.my.salesforce.com' and extra 'domain' 'test'"),
    ({"consumer_key": "k", "consumer_secret": "cs-Secret-9"}, None, "client credentials flow, which needs your My Domain"),
])
def test_contradictions_are_refused_by_name(extra, host, message) -> None:
    with pytest.raises(SalesforceConfigError, match=re.escape(message)) as err:
        _config({"security_token": "tok-Secret-7", **extra}, host=host, login=None if "consumer_key" in extra else "u")
    assert "Secret" not in str(err.value)


def test_the_same_value_under_both_names_is_no_contradiction() -> None:
    config = _config({"security_token": "t", "version": "58.0", "api_version": "58.0", "domain": "acme.my"},
                     host="https://acme.my.salesforce.com")
    assert (config.api_version, config.login_url) == ("58.0", "https://acme.my.salesforce.com")
    session = _config({"session_id": "x", "instance": "na1.salesforce.com", "instance_url": "https://na1.salesforce.com/"},
                      login=None, password=None)
    assert (session.auth_type, session.instance_url) == ("session", "https://na1.salesforce.com")


def test_a_connection_with_no_flow_says_what_is_needed() -> None:
    with pytest.raises(SalesforceConfigError, match="cannot tell the auth flow") as err:
        _config({"domain": "acme.my"}, login="u@example.com", password=None)
    assert "security_token" in str(err.value)


def test_a_bad_organization_id_is_refused_and_secrets_stay_out_of_repr() -> None:
    with pytest.raises(SalesforceConfigError, match="organization_id must be an org id"):
        _config({"organization_id": "001000000000001"})
    config = _config({"organization_id": ORG_ID, "security_token": "tok-Secret-7"})
    assert "Secret" not in repr(config) and "pw-Secret-1" not in repr(config)


def test_other_connection_types_keep_their_own_names() -> None:
    conn = SimpleNamespace(conn_id="c", conn_type="salesforce_suite", host=None, port=None, login="u",
                           password="p", extra_dejson={"consumer_key": "k", "consumer_secret": "s", "version": "58.0"})
    assert SalesforceConnectionConfig.from_connection(conn).api_version == "64.0"


def test_the_benchmarks_official_provider_connection_works_here_unchanged(salesforce_emulator_reset, monkeypatch) -> None:
    """bench/official_provider.py's connection, which the official provider itself runs its
    benchmarks with (IP-filtering login, a ``domain`` that steers simple-salesforce to the emulator,
    the CA trusted through ``REQUESTS_CA_BUNDLE``), read by our hooks as it is."""
    from bench.official_provider import connection

    server = salesforce_emulator_reset
    env = SimpleNamespace(connection_json=server.connection_json(), url=server.url, ca_bundle=str(server.ca_bundle))
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_OFFICIAL", json.dumps(connection(env)))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_bundle))
    hook = SalesforceRestHook("salesforce_official")
    assert (hook.config.auth_type, hook.config.login_url) == ("soap_login", server.url)
    assert hook.create("Account", {"Name": "Benchmarked"})
