"""Unit tests of the emulator's SQLite store: CRUD, validation against the data, upsert, paging."""

from __future__ import annotations

import json
import threading

import pytest

from airflow_provider_salesforce_suite.emulator import ids
from airflow_provider_salesforce_suite.emulator.errors import SalesforceApiError
from airflow_provider_salesforce_suite.emulator.soql import cursors
from airflow_provider_salesforce_suite.emulator.store import ADMIN_USER_ID, ChangeEvent, Store

V = "64.0"


@pytest.fixture()
def schema_file(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({
        "objects": {"Invoice__c": {"fields": {
            "Code__c": {"type": "text", "length": 10, "externalId": True, "unique": True},
            "Account__c": {"type": "masterdetail", "referenceTo": "Account", "childRelationshipName": "Invoices"},
        }}},
        "fields": {"Account": {"Ext__c": {"type": "text", "externalId": True}}},
    }))
    return path


@pytest.fixture()
def store(schema_file):
    s = Store(schema_files=[schema_file])
    yield s
    s.close()


def _raises(code, fn, *args, **kwargs) -> SalesforceApiError:
    with pytest.raises(SalesforceApiError) as exc:
        fn(*args, **kwargs)
    assert exc.value.error_code == code, exc.value
    return exc.value


def test_seed_rows_and_find_user(store):
    user = store.find_user("admin@emulator.local")
    assert user["Id"] == "005000000000001AAA" == ADMIN_USER_ID and ids.normalize(user["Id"]) == user["Id"]
    assert user["IsActive"] is True and user["Name"] == "Emulator Admin" and user["TimeZoneSidKey"]
    assert store.find_user("nobody@x") is None
    org = store.query("SELECT Id, Name FROM Organization", api_version=V)["records"][0]
    assert org["Id"] == "00D000000000001EAA"
    profiles = {r["Name"] for r in store.query("SELECT Name FROM Profile", api_version=V)["records"]}
    assert {"System Administrator", "Standard User", "Read Only"} <= profiles


def test_create_retrieve_shape(store):
    acc = store.create("account", {"name": "Acme", "AnnualRevenue": 10, "Industry": "Banking"})
    assert len(acc) == 18 and acc.startswith("001") and ids.normalize(acc) == acc
    rec = store.retrieve("Account", acc[:15], api_version=V)
    assert list(rec)[0] == "attributes"
    assert rec["attributes"] == {"type": "Account", "url": f"/services/data/v64.0/sobjects/Account/{acc}"}
    assert rec["Name"] == "Acme" and rec["AnnualRevenue"] == 10.0 and rec["IsDeleted"] is False
    assert rec["OwnerId"] == ADMIN_USER_ID and rec["CreatedById"] == ADMIN_USER_ID
    assert rec["CreatedDate"].endswith("+0000") and len(rec["CreatedDate"]) == 28
    assert store.retrieve("Account", acc, ["name"], api_version=V) == {
        "attributes": rec["attributes"], "Name": "Acme", "Id": acc}
    _raises("INVALID_FIELD", store.retrieve, "Account", acc, ["Nope"], api_version=V)


def test_defaults_autonumber_and_fullname(store):
    lead = store.create("Lead", {"LastName": "Doe", "FirstName": "Jane", "Company": "X"})
    rec = store.retrieve("Lead", lead, api_version=V)
    assert rec["Status"] == "Open - Not Contacted" and rec["Name"] == "Jane Doe" and rec["IsConverted"] is False
    c1 = store.create("Case", {})
    c2 = store.create("Case", {"Subject": "s"})
    n1 = store.retrieve("Case", c1, api_version=V)["CaseNumber"]
    n2 = store.retrieve("Case", c2, api_version=V)["CaseNumber"]
    assert int(n2) == int(n1) + 1 and len(n1) == 8
    store.update("Lead", lead, {"FirstName": "Janet"})
    assert store.retrieve("Lead", lead, api_version=V)["Name"] == "Janet Doe"


def test_retrieve_errors(store):
    acc = store.create("Account", {"Name": "A"})
    e = _raises("NOT_FOUND", store.retrieve, "Account", "garbage", api_version=V)
    assert e.status == 404 and "Provided external ID field does not exist" in e.message
    _raises("MALFORMED_ID", store.retrieve, "Account", ADMIN_USER_ID, api_version=V)
    e = _raises("NOT_FOUND", store.retrieve, "Account", ids.to_18("001000000000009"), api_version=V)
    assert e.message == "The requested resource does not exist"
    _raises("NOT_FOUND", store.retrieve, "Foo", acc, api_version=V)


def test_reference_must_exist_and_match_type(store):
    _raises("INVALID_CROSS_REFERENCE_KEY", store.create, "Contact",
            {"LastName": "x", "AccountId": ids.to_18("001000000000009")})
    _raises("FIELD_INTEGRITY_EXCEPTION", store.create, "Contact", {"LastName": "x", "AccountId": ADMIN_USER_ID})
    _raises("MALFORMED_ID", store.create, "Contact", {"LastName": "x", "AccountId": "bad"})
    acc = store.create("Account", {"Name": "A"})
    con = store.create("Contact", {"LastName": "x", "AccountId": acc[:15]})
    assert store.retrieve("Contact", con, ["AccountId"], api_version=V)["AccountId"] == acc


def test_update_and_deleted_errors(store):
    acc = store.create("Account", {"Name": "A"})
    before = store.retrieve("Account", acc, api_version=V)
    store.update("Account", acc, {"Name": "B", "Phone": "123"})
    after = store.retrieve("Account", acc, api_version=V)
    assert after["Name"] == "B" and after["LastModifiedDate"] >= before["LastModifiedDate"]
    _raises("INVALID_FIELD_FOR_INSERT_UPDATE", store.update, "Account", acc, {"IsDeleted": True})
    _raises("MALFORMED_ID", store.update, "Account", "xyz", {"Name": "C"})
    _raises("NOT_FOUND", store.update, "Account", ids.to_18("001000000000009"), {"Name": "C"})
    store.delete("Account", acc)
    _raises("ENTITY_IS_DELETED", store.update, "Account", acc, {"Name": "C"})
    _raises("ENTITY_IS_DELETED", store.delete, "Account", acc)
    _raises("NOT_FOUND", store.retrieve, "Account", acc, api_version=V)


def test_delete_cascades_and_undelete_restores(store):
    acc = store.create("Account", {"Name": "A"})
    con = store.create("Contact", {"LastName": "c", "AccountId": acc})
    inv = store.create("Invoice__c", {"Name": "i", "Account__c": acc})
    store.delete("Account", acc)
    assert store.query("SELECT COUNT() FROM Contact", api_version=V)["totalSize"] == 0
    all_rows = store.query("SELECT Id, IsDeleted FROM Invoice__c", include_deleted=True, api_version=V)
    assert all_rows["records"][0]["IsDeleted"] is True
    store.undelete("Account", acc)
    assert store.retrieve("Contact", con, ["Id"], api_version=V)["Id"] == con
    assert store.retrieve("Invoice__c", inv, ["Id"], api_version=V)["Id"] == inv
    _raises("UNDELETE_FAILED", store.undelete, "Account", acc)


def test_unique_and_duplicate_value(store):
    acc = store.create("Account", {"Name": "A"})
    first = store.create("Invoice__c", {"Name": "i", "Code__c": "ABC", "Account__c": acc})
    e = _raises("DUPLICATE_VALUE", store.create, "Invoice__c", {"Name": "j", "Code__c": "abc", "Account__c": acc})
    assert first in e.message and e.fields == ["Code__c"]
    results = store.create_many("Invoice__c", [{"Name": "k", "Code__c": "X1", "Account__c": acc},
                                               {"Name": "l", "Code__c": "x1", "Account__c": acc}])
    assert results[0].success and not results[1].success
    assert results[1].errors[0].error_code == "DUPLICATE_VALUE"
    store.delete("Invoice__c", first)  # the recycle bin does not hold unique values
    store.create("Invoice__c", {"Name": "m", "Code__c": "ABC", "Account__c": acc})
    _raises("DUPLICATE_VALUE", store.undelete, "Invoice__c", first)


def test_create_many_partial_and_all_or_none(store):
    rows = [{"Name": "ok"}, {"Industry": "Banking"}, {"Name": "ok2"}]
    results = store.create_many("Account", rows)
    assert [r.success for r in results] == [True, False, True]
    assert results[1].id is None and results[1].errors[0].error_code == "REQUIRED_FIELD_MISSING"
    assert results[0].created and ids.normalize(results[0].id)
    results = store.create_many("Account", rows, all_or_none=True)
    assert not any(r.success for r in results)
    assert results[0].errors[0].error_code == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert store.record_counts(["Account"]) == {"sObjects": [{"count": 2, "name": "Account"}]}


def test_update_many(store):
    a, b = (r.id for r in store.create_many("Account", [{"Name": "a"}, {"Name": "b"}]))
    results = store.update_many("Account", [{"Id": a, "Name": "a2"}, {"Id": b, "Name": ""}, {"Name": "x"},
                                            {"Id": "bad", "Name": "x"}])
    assert [r.success for r in results] == [True, False, False, False]
    assert results[1].errors[0].error_code == "REQUIRED_FIELD_MISSING"
    assert results[3].errors[0].error_code == "MALFORMED_ID"
    assert store.retrieve("Account", a, ["Name"], api_version=V)["Name"] == "a2"
    assert store.retrieve("Account", b, ["Name"], api_version=V)["Name"] == "b"


def test_upsert(store):
    acc_id, created = store.upsert("Account", "Ext__c", "E-1", {"Name": "First"})
    assert created and store.retrieve("Account", acc_id, ["Ext__c"], api_version=V)["Ext__c"] == "E-1"
    same, created = store.upsert("Account", "ext__c", "e-1", {"Name": "Second"})
    assert same == acc_id and not created
    assert store.retrieve_by_external_id("Account", "Ext__c", "E-1", ["Name"], api_version=V)["Name"] == "Second"
    _raises("NOT_FOUND", store.upsert, "Account", "Name", "x", {})
    _raises("INVALID_FIELD", store.upsert, "Account", "Ext__c", "E-1", {"Ext__c": "E-2"})
    store.upsert("Account", "Ext__c", "E-1", {"Ext__c": "E-1", "Phone": "1"})  # same value is fine
    other = store.create("Account", {"Name": "Dup", "Ext__c": "E-1"})
    e = _raises("MULTIPLE_CHOICES", store.upsert, "Account", "Ext__c", "E-1", {"Name": "x"})
    assert e.status == 300
    assert sorted(e.extra["urls"]) == sorted(f"/services/data/v64.0/sobjects/Account/{i}" for i in (acc_id, other))
    _raises("NOT_FOUND", store.retrieve_by_external_id, "Account", "Ext__c", "none", api_version=V)
    by_id, created = store.upsert("Account", "Id", other, {"Name": "ById"})
    assert by_id == other and not created


def test_listeners_get_committed_changes(store):
    events: list[ChangeEvent] = []
    store.add_listener(events.append)
    acc = store.create("Account", {"Name": "A"})
    store.update("Account", acc, {"Name": "B", "Phone": None})
    store.delete("Account", acc)
    store.undelete("Account", acc)
    assert [e.operation for e in events] == ["create", "update", "delete", "undelete"]
    assert events[0].record["Name"] == "A" and "Name" in events[0].changed_fields
    assert events[1].changed_fields == ["Name"] and events[1].record["Name"] == "B"
    store.create_many("Account", [{"Name": "x"}, {}])
    assert len(events) == 5  # failed rows emit nothing


def test_listeners_with_an_interest_hear_only_the_objects_they_want(store):
    asked: list[str] = []
    contacts: list[ChangeEvent] = []

    def wants(sobject: str) -> bool:
        asked.append(sobject)
        return sobject == "Contact"

    store.add_listener(contacts.append, wants=wants)
    store.create_many("Account", [{"Name": f"A{n}"} for n in range(50)])
    acc = store.create("Account", {"Name": "Parent"})
    contact = store.create("Contact", {"LastName": "Kept", "AccountId": acc})
    store.update_many("Contact", [{"Id": contact, "LastName": "Changed"}])
    store.delete("Account", acc)  # cascades to the contact: only that event is built
    assert [(e.sobject, e.operation) for e in contacts] == [
        ("Contact", "create"), ("Contact", "update"), ("Contact", "delete")]
    assert contacts[-1].record_id == contact
    assert asked.count("Account") == 3  # once per write call, never per row
    everything: list[ChangeEvent] = []
    store.add_listener(everything.append)  # no interest given: every object, as before
    store.create("Account", {"Name": "Seen"})
    assert [e.sobject for e in everything] == ["Account"] and len(contacts) == 3


def test_reset_keeps_schema_and_reseeds(store):
    store.create("Account", {"Name": "A"})
    store.reset()
    assert store.record_counts(["Account", "User"])["sObjects"] == [
        {"count": 0, "name": "Account"}, {"count": 1, "name": "User"}]
    assert store.find_user("admin@emulator.local") is not None
    assert store.describe("Invoice__c", api_version=V)["name"] == "Invoice__c"


def test_file_database_persists(tmp_path, schema_file):
    path = str(tmp_path / "org.db")
    s = Store(path, schema_files=[schema_file])
    acc = s.create("Account", {"Name": "Persisted"})
    s.close()
    s = Store(path, schema_files=[schema_file])
    assert s.retrieve("Account", acc, ["Name"], api_version=V)["Name"] == "Persisted"
    new = s.create("Account", {"Name": "Next"})
    assert new != acc and s.record_counts(["User"])["sObjects"][0]["count"] == 1  # not re-seeded
    s.close()


def test_query_paging_and_locators(store, monkeypatch):
    store.create_many("Account", [{"Name": f"A{i:04d}"} for i in range(450)])
    first = store.query("SELECT Name FROM Account ORDER BY Name", batch_size=200, api_version=V)
    assert first["totalSize"] == 450 and not first["done"] and len(first["records"]) == 200
    url = first["nextRecordsUrl"]
    assert url.startswith("/services/data/v64.0/query/01g") and url.endswith("-200")
    locator = url.rsplit("/", 1)[1]
    second = store.query_more(locator, api_version=V)
    assert second["records"][0]["Name"] == "A0200" and second["nextRecordsUrl"].endswith("-400")
    third = store.query_more(second["nextRecordsUrl"].rsplit("/", 1)[1], api_version=V)
    assert third["done"] and "nextRecordsUrl" not in third and third["records"][-1]["Name"] == "A0449"
    _raises("INVALID_QUERY_LOCATOR", store.query_more, "01g000000000000AAA-200", api_version=V)
    small = store.query("SELECT Id FROM Account", batch_size=5, api_version=V)
    assert len(small["records"]) == 200  # Salesforce's minimum batch size
    again = store.query("SELECT Id FROM Account", batch_size=200, api_version=V)
    loc = again["nextRecordsUrl"].rsplit("/", 1)[1]
    clock = [0.0]
    monkeypatch.setattr(store._cursors, "_clock", lambda: clock[0])
    store._cursors.get(loc)
    clock[0] += cursors.IDLE_TIMEOUT + 1
    _raises("INVALID_QUERY_LOCATOR", store.query_more, loc, api_version=V)


def test_threads_share_the_store(store):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                store.create("Account", {"Name": f"T{n}-{i}"})
                store.query("SELECT COUNT() FROM Account", api_version=V)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.query("SELECT COUNT() FROM Account", api_version=V)["totalSize"] == 200


def test_non_createable_object(store):
    _raises("INVALID_TYPE_FOR_OPERATION", store.create, "Organization", {"Name": "x"})
    _raises("NOT_FOUND", store.create, "Nope__c", {"Name": "x"})
