"""Seed records of schema files: loaded at start-up and on reset, ids kept, references checked."""

from __future__ import annotations

import json

import pytest

from airflow_provider_salesforce_suite.emulator.metadata import SchemaError
from airflow_provider_salesforce_suite.emulator.store import ADMIN_USER_ID, Store

V = "64.0"
ACME = "001000000000042AAA"
SCHEMA = {
    "objects": {"Invoice__c": {"keyPrefix": "a0X", "fields": {
        "Account__c": {"type": "lookup", "referenceTo": "Account", "childRelationshipName": "Invoices"},
        "Total__c": {"type": "currency"}}}},
    "records": {
        "Account": [{"Id": ACME, "Name": "Acme", "Industry": "Banking", "CreatedDate": "2020-01-02T03:04:05Z"}],
        "Invoice__c": [{"Id": "a0X000000000001", "Name": "INV-1", "Account__c": ACME, "Total__c": 12.5},
                       {"Name": "INV-2"}],
    },
}


def _write(tmp_path, document: dict, name: str = "seed.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def _rows(store: Store, soql: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "attributes"} for r in store.query(soql, api_version=V)["records"]]


def test_seed_records_keep_ids_references_and_audit_fields(tmp_path) -> None:
    store = Store(schema_files=[_write(tmp_path, SCHEMA)])
    try:
        account = _rows(store, "SELECT Id, Name, CreatedDate, OwnerId, (SELECT Id, Name, Total__c FROM Invoices__r) "
                               "FROM Account WHERE Name = 'Acme'")[0]
        assert account["Id"] == ACME and account["CreatedDate"] == "2020-01-02T03:04:05.000+0000"
        assert account["OwnerId"] == ADMIN_USER_ID  # not given: what an insert would give
        invoices = account["Invoices__r"]["records"]
        assert [(r["Id"], r["Name"], r["Total__c"]) for r in invoices] == [("a0X000000000001EAA", "INV-1", 12.5)]
        other = _rows(store, "SELECT Id FROM Invoice__c WHERE Name = 'INV-2'")[0]
        assert other["Id"].startswith("a0X") and other["Id"] != "a0X000000000001EAA"

        store.create("Account", {"Name": "Made in the test"})
        store.reset()  # the data goes, the seed records come back
        assert sorted(r["Name"] for r in _rows(store, "SELECT Name FROM Account")) == ["Acme"]
        assert len(_rows(store, "SELECT Id FROM Invoice__c")) == 2
    finally:
        store.close()


def test_a_database_file_is_seeded_once(tmp_path) -> None:
    schema = _write(tmp_path, SCHEMA)
    for _ in range(2):
        store = Store(str(tmp_path / "org.sqlite"), schema_files=[schema])
        try:
            assert len(_rows(store, "SELECT Id FROM Invoice__c")) == 2
        finally:
            store.close()


def test_seeding_a_row_the_org_has_updates_it(tmp_path) -> None:
    store = Store(schema_files=[_write(tmp_path, {"records": {"User": [{"Id": ADMIN_USER_ID, "FirstName": "Ada"}]}})])
    try:
        assert _rows(store, f"SELECT FirstName, Username FROM User WHERE Id = '{ADMIN_USER_ID}'") == [
            {"FirstName": "Ada", "Username": "admin@emulator.local"}]
    finally:
        store.close()


@pytest.mark.parametrize("records,problem", [
    ({"Account": [{"Name": "x" * 256}]}, "records.Account[0].Name: STRING_TOO_LONG: Account Name: data value too large"),
    ({"Account": [{"Name": "A"}, {"Name": "B", "Nope": 1}]}, "records.Account[1]: Account has no field 'Nope'"),
    ({"Account": [{"Id": "003000000000001AAA", "Name": "A"}]}, "records.Account[0].Id: '003000000000001AAA' is not an id of Account"),
    ({"Contact": [{"LastName": "Doe", "AccountId": "001000000000099AAA"}]},
     "records.Contact[0].AccountId: 001000000000099AAA is neither a seeded record nor one the org has"),
    ({"Invoice__c": [{"Name": "I", "Total__c": "lots"}]}, "records.Invoice__c[0].Total__c: JSON_PARSER_ERROR"),
])
def test_a_bad_seed_record_names_its_path(tmp_path, records, problem) -> None:
    path = _write(tmp_path, {"objects": SCHEMA["objects"], "records": records})
    with pytest.raises(SchemaError) as err:
        Store(schema_files=[path])
    assert str(path) in str(err.value) and problem in str(err.value)


def test_load_records_is_all_or_none(tmp_path) -> None:
    store = Store()
    try:
        with pytest.raises(SchemaError, match=r"records\.Account\[1\]\.Name"):
            store.load_records({"Account": [{"Name": "Good"}, {"Name": "y" * 300}]}, source="test")
        assert _rows(store, "SELECT Id FROM Account") == []
        assert store.load_records({"Account": [{"Name": "Good"}]}) == 1
    finally:
        store.close()


def test_the_documented_seed_file_loads(tmp_path) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "emulator.md").read_text()
    section = text[text.index("### Seed records"):]
    block = section[section.index("```json\n") + len("```json\n"):section.index("\n```", section.index("```json"))]
    store = Store(schema_files=[_write(tmp_path, json.loads(block))])
    try:
        rows = _rows(store, "SELECT LastName, Account.Name, Account.Tier__c FROM Contact")
        assert rows == [{"LastName": "Doe", "Account": {"attributes": {"type": "Account", "url":
                         f"/services/data/v{V}/sobjects/Account/{ACME}"}, "Name": "Acme", "Tier__c": "Gold"}}]
    finally:
        store.close()


def test_ids_an_emulator_made_are_not_made_again(tmp_path) -> None:
    """A snapshot of an emulator seeds ids of the emulator's own form: new records get others."""
    made = Store()
    try:
        seeded_ids = [made.create("Account", {"Name": f"A{i}"}) for i in range(3)]
    finally:
        made.close()
    store = Store(schema_files=[_write(tmp_path, {"records": {"Account": [{"Id": i, "Name": "x"} for i in seeded_ids]}})])
    try:
        for _ in range(2):
            new_id = store.create("Account", {"Name": "new"})
            assert new_id not in seeded_ids
            store.reset()
    finally:
        store.close()
