"""A reply refused because it declares a DTD or an entity says so, whichever path met it (issue #14)."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError, SalesforceAuthError, error_from_response
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook
from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook

BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lolololololol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><error><exceptionCode>&lol3;</exceptionCode>'
        "<exceptionMessage>x</exceptionMessage></error>")


def assert_refused_as_unsafe(text: str) -> None:
    assert "refused as unsafe XML" in text and "declares a DTD" in text and "not parsed" in text
    assert "unparseable" not in text and "lolol" not in text


def test_error_from_response_says_unsafe() -> None:
    error = error_from_response(400, {"Content-Type": "application/xml"}, BOMB.encode(), "GET", "/services/async/64.0/job/x")
    assert error.error_code == "UNSAFE_XML" and error.status == 400
    assert_refused_as_unsafe(str(error))
    entity_only = b'<jobInfo><!ENTITY x "y"><id>&x;</id></jobInfo>'
    assert "declares an entity" in str(error_from_response(400, {}, entity_only))


def test_bulk_v1_error_reply_with_entity_bomb(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id = hook.v1_create_job("Account", "insert")["id"]
    path = f"/services/async/{hook.api_version}/job/{job_id}"
    emulator_admin.fault(body=BOMB, status=400, content_type="application/xml", count=1, path_prefix=path)
    with pytest.raises(SalesforceApiError) as err:
        hook.v1_get_job(job_id)
    assert err.value.error_code == "UNSAFE_XML" and err.value.path == path
    assert_refused_as_unsafe(str(err.value))


def test_2xx_json_call_answered_with_a_bomb(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = hook.data_url("limits")
    hook.request("GET", path)
    emulator_admin.fault(body=BOMB, content_type="application/xml", count=1, path_prefix=path)
    with pytest.raises(SalesforceApiError) as err:
        hook.request("GET", path).json()
    assert err.value.status == 200
    assert_refused_as_unsafe(str(err.value))


def test_soap_login_answered_with_a_bomb(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"auth_type": "soap_login", "api_version": "64.0",
                                             "consumer_key": None, "consumer_secret": None}))
    emulator_admin.fault(body=BOMB, content_type="text/xml", count=1, path_prefix="/services/Soap/u/")
    with pytest.raises(SalesforceAuthError) as err:
        hook.request("GET", hook.data_url("limits"))
    assert_refused_as_unsafe(str(err.value))
