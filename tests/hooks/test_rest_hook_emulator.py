"""SalesforceRestHook against the emulator: records, queries, describe, simple-salesforce re-auth."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceMalformedQueryError,
    SalesforceMultipleChoicesError,
    SalesforceNotFoundError,
)
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook, simple_salesforce_errors


def test_crud_roundtrip(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())
    record_id = hook.create("Account", {"Name": "Acme", "Industry": "Technology"})
    assert record_id.startswith("001")
    hook.update("Account", record_id, {"Rating": "Hot"})
    record = hook.get("Account", record_id, fields=["Name", "Rating"])
    assert (record["Name"], record["Rating"]) == ("Acme", "Hot")
    hook.delete("Account", record_id)
    with pytest.raises(SalesforceNotFoundError) as err:
        hook.get("Account", record_id)
    assert err.value.status == 404 and err.value.method == "GET"
    assert err.value.path and err.value.path.endswith(record_id)


def test_validation_error_is_translated_with_fields(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())
    with pytest.raises(SalesforceApiError) as err:
        hook.create("Account", {"Industry": "Technology"})
    assert err.value.status == 400 and err.value.error_code == "REQUIRED_FIELD_MISSING"
    assert err.value.fields == ["Name"] and err.value.method == "POST"


def test_query_pages_lazily(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    for i in range(5):
        hook.create("Account", {"Name": f"Paged {i}"})
    rows = hook.query("SELECT Id, Name FROM Account WHERE Name LIKE 'Paged%' ORDER BY Name", batch_size=200)
    assert next(rows)["Name"] == "Paged 0"  # first page fetched, iteration not finished
    assert [r["Name"] for r in rows] == [f"Paged {i}" for i in range(1, 5)]


def test_query_follows_next_records_url(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    for i in range(250):
        hook.create("Account", {"Name": f"Bulk {i:04d}"})
    names = [r["Name"] for r in hook.query("SELECT Name FROM Account WHERE Name LIKE 'Bulk%'", batch_size=200)]
    assert len(names) == 250
    pages = [k for k in emulator_admin.stats()["requests"] if k.startswith("GET /services/data/v64.0/query/")]
    assert pages, "expected at least one nextRecordsUrl page"


def test_query_all_sees_deleted_records(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())
    record_id = hook.create("Account", {"Name": "Soon deleted"})
    hook.delete("Account", record_id)
    soql = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{record_id}'"
    assert list(hook.query(soql)) == []
    assert [r["Id"] for r in hook.query_all(soql)] == [record_id]


def test_malformed_query(sf_conn) -> None:
    with pytest.raises(SalesforceMalformedQueryError) as err:
        list(SalesforceRestHook(sf_conn()).query("SELECT Id FROMM Account"))
    assert err.value.status == 400 and "FROMM" not in (err.value.path or "")


def test_metadata_and_limits(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())
    assert hook.describe("Account")["name"] == "Account"
    assert any(o["name"] == "Contact" for o in hook.describe_global()["sobjects"])
    assert hook.limits()["DailyApiRequests"]["Max"] > 0
    assert any(v["version"] == "64.0" for v in hook.versions())
    assert hook.api_usage is not None and hook.api_usage.used >= 1
    with pytest.raises(SalesforceNotFoundError):
        hook.describe("NoSuchObject__c")


def test_upsert_by_external_id(sf_conn, custom_emulator) -> None:
    hook = SalesforceRestHook(sf_conn(server=custom_emulator))
    created = hook.upsert("Account", "External_Id__c", "EXT-1", {"Name": "Ext"})
    assert created["created"] is True and created["id"].startswith("001")
    updated = hook.upsert("Account", "External_Id__c", "EXT-1", {"Name": "Ext 2"})
    assert updated == {"id": created["id"], "created": False}
    assert hook.get("Account", created["id"], fields=["Name"])["Name"] == "Ext 2"
    hook.create("Account", {"Name": "Dup A", "External_Id__c": "DUP"})
    hook.create("Account", {"Name": "Dup B", "External_Id__c": "DUP"})
    with pytest.raises(SalesforceMultipleChoicesError) as err:
        hook.upsert("Account", "External_Id__c", "DUP", {"Name": "x"})
    assert err.value.status == 300


def test_simple_salesforce_gets_transparent_reauth(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    record_id = hook.create("Account", {"Name": "Reauth"})
    emulator_admin.expire_sessions()
    assert hook.get("Account", record_id)["Name"] == "Reauth"
    emulator_admin.expire_sessions()
    sf = hook.get_conn()  # built with the first token: its own Authorization header is stale now
    assert sf.Account.get(record_id)["Name"] == "Reauth"
    stats = emulator_admin.stats()
    assert stats["reauths"] == 2 and stats["token_grants_total"] == 3


def test_simple_salesforce_query_after_expiry(sf_conn, emulator_admin) -> None:
    hook = SalesforceRestHook(sf_conn())
    record_id = hook.create("Account", {"Name": "Queried"})
    emulator_admin.expire_sessions()
    sf = hook.get_conn()
    assert sf.query(f"SELECT Name FROM Account WHERE Id = '{record_id}'")["records"][0]["Name"] == "Queried"
    assert emulator_admin.stats()["reauths"] == 1


def test_simple_salesforce_errors_boundary(sf_conn) -> None:
    sf = SalesforceRestHook(sf_conn()).get_conn()
    with pytest.raises(SalesforceMalformedQueryError):
        with simple_salesforce_errors("GET"):
            sf.query("SELECT Id FROMM Account")


def test_generic_call(sf_conn) -> None:
    hook = SalesforceRestHook(sf_conn())
    assert any(o["name"] == "Account" for o in hook.call("GET", "sobjects")["sobjects"])
    assert hook.call("GET", "/services/data/")[0]["version"]
