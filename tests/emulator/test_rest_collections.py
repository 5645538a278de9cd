"""sObject Collections and relationship traversal over loopback HTTPS: shapes, codes, allOrNone."""

from __future__ import annotations

import pytest
from sf_emulator_client import V, EmulatorClient

from airflow_provider_salesforce_suite.emulator.ids import to_18
from airflow_provider_salesforce_suite.emulator.store import Store

ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
    "fields": [],
}
MISSING_NAME = {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Name]",
                "fields": ["Name"]}


@pytest.fixture
def client(custom_emulator) -> EmulatorClient:
    """The custom emulator (reset per test) has the external id field ``Account.External_Id__c``."""
    return EmulatorClient(custom_emulator)


def _acc(**values) -> dict:
    return {"attributes": {"type": "Account"}, **values}


def _count(client: EmulatorClient, sobject: str = "Account") -> int:
    return client.get(V + "/query", params={"q": f"SELECT COUNT() FROM {sobject}"}).json()["totalSize"]


def _create(client: EmulatorClient, *records: dict, all_or_none: bool = False):
    return client.post(V + "/composite/sobjects", json={"allOrNone": all_or_none, "records": list(records)})


# -- create ----------------------------------------------------------------------------------------


def test_create_mixed_types_in_order_with_partial_failure(client: EmulatorClient) -> None:
    reply = _create(client, _acc(Name="A"), _acc(), {"attributes": {"type": "Contact"}, "LastName": "C"},
                    _acc(Name="B"))
    assert reply.status_code == 200
    body = reply.json()
    assert [r["success"] for r in body] == [True, False, True, True]
    assert body[0]["id"].startswith("001") and body[2]["id"].startswith("003") and body[3]["id"].startswith("001")
    assert body[0]["errors"] == []
    assert body[1] == {"success": False, "errors": [MISSING_NAME]}  # a failed create has no id
    assert _count(client) == 2 and _count(client, "Contact") == 1  # the rest was committed


def test_create_all_or_none_rolls_back_everything(client: EmulatorClient) -> None:
    reply = _create(client, _acc(Name="A"), _acc(), _acc(Name="B"), all_or_none=True)
    assert reply.status_code == 200
    assert reply.json() == [
        {"success": False, "errors": [ROLLED_BACK]},
        {"success": False, "errors": [MISSING_NAME]},
        {"success": False, "errors": [ROLLED_BACK]},
    ]
    assert _count(client) == 0


def test_create_limits_and_bad_bodies(client: EmulatorClient) -> None:
    reply = _create(client, *[_acc(Name=f"A{i}") for i in range(201)])
    assert reply.status_code == 400
    assert reply.json() == [{"message": "record limit reached. cannot submit more than 200 records into this call",
                             "errorCode": "EXCEEDED_ID_LIMIT"}]
    types = ["Account", "Contact"] * 6  # 12 chunks
    records = [{"attributes": {"type": t}, "Name": "x", "LastName": "y"} for t in types]
    reply = _create(client, *records)
    assert reply.status_code == 400 and "more than 10 chunks" in reply.json()[0]["message"]
    assert _count(client) == 0
    for body in ({"records": "nope"}, [], {"records": [], "allOrNone": "yes"}):
        reply = client.post(V + "/composite/sobjects", json=body)
        assert reply.status_code == 400 and reply.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    reply = _create(client, {"Name": "untyped"}, {"attributes": {"type": "Nope__c"}, "Name": "x"})
    assert [r["errors"][0]["statusCode"] for r in reply.json()] == ["INVALID_TYPE", "INVALID_TYPE"]


# -- update, upsert, delete -------------------------------------------------------------------


def test_update_partial_and_all_or_none(client: EmulatorClient) -> None:
    ids = [r["id"] for r in _create(client, _acc(Name="A"), _acc(Name="B")).json()]
    missing = to_18(ids[0][:3] + "5E0000ZZZZZZ")
    reply = client.patch(V + "/composite/sobjects", json={"records": [
        _acc(id=ids[0], Name="A2"), _acc(id=missing, Name="X"), _acc(id=ids[1], Name="B2")]})
    assert reply.status_code == 200
    body = reply.json()
    assert [r["success"] for r in body] == [True, False, True]
    assert body[0] == {"id": ids[0], "success": True, "errors": []}
    assert body[1]["errors"][0]["statusCode"] == "NOT_FOUND"
    reply = client.patch(V + "/composite/sobjects", json={"allOrNone": True, "records": [
        _acc(id=ids[0], Name="A3"), _acc(id=ids[1], Name=None)]})
    body = reply.json()
    assert body[0] == {"id": ids[0], "success": False, "errors": [ROLLED_BACK]}
    assert body[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    names = client.get(V + f"/composite/sobjects/Account?ids={ids[0]},{ids[1]}&fields=Name").json()
    assert [n["Name"] for n in names] == ["A2", "B2"]


def test_upsert_by_external_id(client: EmulatorClient) -> None:
    url = V + "/composite/sobjects/Account/External_Id__c"
    first = client.patch(url, json={"records": [_acc(External_Id__c="e1", Name="One"), _acc(External_Id__c="e2", Name="Two")]})
    assert first.status_code == 200
    assert [(r["success"], r["created"]) for r in first.json()] == [(True, True), (True, True)]
    again = client.patch(url, json={"records": [
        _acc(External_Id__c="e1", Name="Uno"), _acc(Name="no key"), {"attributes": {"type": "Contact"}, "External_Id__c": "e3"}]})
    body = again.json()
    assert body[0] == {"id": first.json()[0]["id"], "success": True, "errors": [], "created": False}
    assert body[1]["errors"][0]["statusCode"] == "MISSING_ARGUMENT" and body[1]["created"] is False
    assert body[2]["errors"][0]["statusCode"] == "INVALID_TYPE"
    assert _count(client) == 2
    rolled = client.patch(url, json={"allOrNone": True, "records": [_acc(External_Id__c="e9", Name="N"), _acc(Name="x")]})
    assert rolled.json()[0] == {"success": False, "errors": [ROLLED_BACK], "created": False}
    assert _count(client) == 2


def test_upsert_fails_every_record_repeating_an_external_id_of_the_call(client: EmulatorClient) -> None:
    # As Salesforce's DML: the records of one call are matched together, so a key given twice
    # (any case) fails both records; the others are saved (as the Bulk API's batches do).
    url = V + "/composite/sobjects/Account/External_Id__c"
    reply = client.patch(url, json={"records": [_acc(External_Id__c="d1", Name="A"), _acc(External_Id__c="ok", Name="B"),
                                                _acc(External_Id__c="D1", Name="C")]})
    duplicate = {"statusCode": "DUPLICATE_EXTERNAL_ID", "message": "Duplicate external id specified: {}",
                 "fields": ["External_Id__c"]}
    body = reply.json()
    assert [r["success"] for r in body] == [False, True, False]
    assert body[0]["errors"] == [{**duplicate, "message": duplicate["message"].format("d1")}]
    assert body[2]["errors"] == [{**duplicate, "message": duplicate["message"].format("D1")}]
    assert _count(client) == 1


def test_delete_partial_and_all_or_none(client: EmulatorClient) -> None:
    ids = [r["id"] for r in _create(client, _acc(Name="A"), _acc(Name="B"), _acc(Name="C")).json()]
    reply = client.delete(V + "/composite/sobjects", params={"ids": f"{ids[0]},bad", "allOrNone": "false"})
    assert reply.status_code == 200
    assert reply.json() == [{"id": ids[0], "success": True, "errors": []},
                            {"success": False, "errors": [{"statusCode": "MALFORMED_ID", "message": "malformed id bad",
                                                           "fields": []}]}]
    reply = client.delete(V + "/composite/sobjects", params={"ids": f"{ids[1]},{ids[0]}", "allOrNone": "true"})
    body = reply.json()
    assert body[0] == {"id": ids[1], "success": False, "errors": [ROLLED_BACK]}
    assert body[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert _count(client) == 2
    assert client.delete(V + "/composite/sobjects").status_code == 400
    too_many = ",".join([ids[2]] * 201)
    assert client.delete(V + "/composite/sobjects", params={"ids": too_many}).json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


# -- retrieve -------------------------------------------------------------------------------------


def test_retrieve_get_and_post(client: EmulatorClient) -> None:
    ids = [r["id"] for r in _create(client, _acc(Name="A"), _acc(Name="B")).json()]
    missing = to_18(ids[0][:3] + "5E0000ZZZZZZ")
    reply = client.get(V + "/composite/sobjects/Account", params={"ids": f"{ids[1]},{missing},{ids[0]}",
                                                                   "fields": "Id,Name"})
    assert reply.status_code == 200
    body = reply.json()
    assert body[1] is None and [body[0]["Name"], body[2]["Name"]] == ["B", "A"]
    assert body[0]["attributes"] == {"type": "Account", "url": f"{V}/sobjects/Account/{ids[1]}"}
    posted = client.post(V + "/composite/sobjects/Account", json={"ids": [ids[0]], "fields": ["Name"]})
    assert posted.status_code == 200 and posted.json()[0]["Name"] == "A"
    assert client.get(V + f"/composite/sobjects/Account?ids={ids[0]}").status_code == 400  # fields required
    assert client.post(V + "/composite/sobjects/Account", json={"ids": [], "fields": ["Name"]}).status_code == 400
    over = client.post(V + "/composite/sobjects/Account", json={"ids": [ids[0]] * 2001, "fields": ["Name"]})
    assert over.status_code == 400 and over.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    bad_field = client.post(V + "/composite/sobjects/Account", json={"ids": [ids[0]], "fields": ["Nope"]})
    assert bad_field.status_code == 400 and bad_field.json()[0]["errorCode"] == "INVALID_FIELD"


# -- relationship traversal ---------------------------------------------------------------------------


def test_relationship_traversal_parent_and_children(client: EmulatorClient) -> None:
    account = _create(client, _acc(Name="Parent", External_Id__c="p1")).json()[0]["id"]
    contacts = _create(client, *[{"attributes": {"type": "Contact"}, "LastName": n, "AccountId": account}
                                 for n in ("K1", "K2")], {"attributes": {"type": "Contact"}, "LastName": "Orphan"})
    contact_ids = [r["id"] for r in contacts.json()]
    parent = client.get(V + f"/sobjects/Contact/{contact_ids[0]}/Account", params={"fields": "Name"})
    assert parent.status_code == 200 and parent.json()["Name"] == "Parent" and parent.json()["Id"] == account
    children = client.get(V + f"/sobjects/Account/{account}/Contacts", params={"fields": "LastName"})
    assert children.status_code == 200
    assert children.json()["totalSize"] == 2 and children.json()["done"] is True
    assert sorted(r["LastName"] for r in children.json()["records"]) == ["K1", "K2"]
    orphan = client.get(V + f"/sobjects/Contact/{contact_ids[2]}/Account")
    assert orphan.status_code == 404
    # The same route still reads by external id.
    by_ext = client.get(V + "/sobjects/Account/External_Id__c/p1")
    assert by_ext.status_code == 200 and by_ext.json()["Id"] == account


# -- store transactions ------------------------------------------------------------------------


def test_store_transaction_nests_and_listeners_hear_only_commits() -> None:
    store = Store()
    heard: list[str] = []
    store.add_listener(lambda event: heard.append(event.record["Name"]))
    with store.transaction():
        store.create("Account", {"Name": "kept"})
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.create("Account", {"Name": "inner undone"})
                raise RuntimeError("undo the inner level")
        assert heard == []  # not before the outermost commit
    assert heard == ["kept"]
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.create("Account", {"Name": "outer undone"})
            raise RuntimeError("undo all")
    names = [r["Name"] for r in store.query("SELECT Name FROM Account", api_version="62.0")["records"]]
    assert names == ["kept"] and heard == ["kept"]
    store.close()


# -- values Salesforce cannot keep -------------------------------------------------------------


def _nul_error(field: str, position: int) -> dict:
    return {"statusCode": "FIELD_INTEGRITY_EXCEPTION", "fields": [field],
            "message": f"{'Account Name' if field == 'Name' else field}: value contains the invalid character NUL "
                       f"(U+0000) at position {position}"}


def test_a_nul_character_is_refused_on_every_save_surface(client: EmulatorClient) -> None:
    # One check in the shared validation: sObject rows, Collections, composite subrequests, updates.
    single = client.post(V + "/sobjects/Account", json={"Name": "Acme\u0000Corp"})
    assert single.status_code == 400
    error = single.json()[0]
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION" and error["fields"] == ["Name"]
    assert "NUL (U+0000) at position 5" in error["message"]
    reply = _create(client, _acc(Name="ok"), _acc(Name="\u0000"), _acc(Name="also ok", Description="a\u0000"))
    body = reply.json()
    assert [r["success"] for r in body] == [True, False, False]
    assert body[1]["errors"] == [_nul_error("Name", 1)]
    assert body[2]["errors"][0]["statusCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert body[2]["errors"][0]["fields"] == ["Description"]
    patched = client.patch(V + "/composite/sobjects", json={"records": [_acc(id=body[0]["id"], Name="x\u0000")]})
    assert patched.json()[0]["errors"] == [_nul_error("Name", 2)]
    composite = client.post(V + "/composite", json={"compositeRequest": [
        {"referenceId": "a", "method": "POST", "url": V + "/sobjects/Account", "body": {"Name": "\u0000z"}}]})
    sub = composite.json()["compositeResponse"][0]
    assert sub["httpStatusCode"] == 400 and sub["body"][0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    names = [r["Name"] for r in client.get(V + "/query", params={"q": "SELECT Name FROM Account"}).json()["records"]]
    assert names == ["ok"]  # nothing with a NUL was stored, the clean record was left unchanged
