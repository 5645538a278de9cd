"""SalesforceBaseHook: no I/O on construction, config from the connection, URLs."""

from __future__ import annotations

import json

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceConfigError
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook


def test_construction_does_no_io() -> None:
    hook = SalesforceBaseHook("does_not_exist_anywhere")  # no connection lookup yet
    assert hook.salesforce_conn_id == "does_not_exist_anywhere"
    assert SalesforceBaseHook.default_conn_name == "salesforce_suite_default"
    assert SalesforceBaseHook.conn_type == "salesforce_suite" and SalesforceBaseHook.conn_name_attr == "salesforce_conn_id"


def test_config_from_env_connection_and_version_override(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SF_UNIT", json.dumps({
        "conn_type": "salesforce_suite", "host": "test", "login": "u@x.com", "password": "pw-unit-test",
        "extra": {"extra__salesforce_suite__consumer_key": "k", "consumer_secret": "s-unit-test", "api_version": "62.0"}}))
    hook = SalesforceBaseHook("sf_unit")
    assert hook.config.login_url == "https://test.salesforce.com" and hook.api_version == "62.0"
    assert hook.data_url("sobjects/Account") == "/services/data/v62.0/sobjects/Account"
    assert SalesforceBaseHook("sf_unit", api_version="60.0").data_url("/limits") == "/services/data/v60.0/limits"


def test_invalid_connection_fails_before_network(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SF_BAD", json.dumps({
        "conn_type": "salesforce_suite", "host": "login", "extra": {"auth_type": "jwt", "consumer_key": "k"}}))
    hook = SalesforceBaseHook("sf_bad")
    with pytest.raises(SalesforceConfigError, match="needs username"):
        hook.request("GET", "/services/data/")
    ok, message = hook.test_connection()
    assert not ok and "needs username" in message
