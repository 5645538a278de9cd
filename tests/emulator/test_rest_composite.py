"""Composite, Composite Batch, Composite Graph and sObject Tree over loopback HTTPS."""

from __future__ import annotations

import pytest
from sf_emulator_client import V, EmulatorClient

HALTED = {"errorCode": "PROCESSING_HALTED",
          "message": "The transaction was rolled back since another operation in the same transaction failed."}


@pytest.fixture
def client(salesforce_emulator_reset) -> EmulatorClient:
    return EmulatorClient(salesforce_emulator_reset)


def _count(client: EmulatorClient, sobject: str = "Account") -> int:
    return client.get(V + "/query", params={"q": f"SELECT COUNT() FROM {sobject}"}).json()["totalSize"]


def _sub(ref: str, method: str, path: str, body=None) -> dict:
    sub = {"referenceId": ref, "method": method, "url": V + path}
    if body is not None:
        sub["body"] = body
    return sub


def _composite(client: EmulatorClient, *subs: dict, all_or_none: bool = False):
    return client.post(V + "/composite", json={"allOrNone": all_or_none, "compositeRequest": list(subs)})


def test_composite_references_between_subrequests(client: EmulatorClient) -> None:
    reply = _composite(
        client,
        _sub("acc", "POST", "/sobjects/Account", {"Name": "Ref Co"}),
        _sub("con", "POST", "/sobjects/Contact", {"LastName": "Ref", "AccountId": "@{acc.id}"}),
        _sub("q", "GET", "/query?q=SELECT+Id,Name+FROM+Account+WHERE+Id='@{acc.id}'"),
        _sub("byq", "PATCH", "/sobjects/Account/@{q.records[0].Id}", {"Description": "@{q.records[0].Name}!"}),
        _sub("get", "GET", "/sobjects/Account/@{acc.id}?fields=Description"),
    )
    assert reply.status_code == 200
    items = reply.json()["compositeResponse"]
    assert [i["referenceId"] for i in items] == ["acc", "con", "q", "byq", "get"]
    assert [i["httpStatusCode"] for i in items] == [201, 201, 200, 204, 200]
    account_id = items[0]["body"]["id"]
    assert items[0]["body"] == {"id": account_id, "success": True, "errors": []}
    assert items[0]["httpHeaders"] == {"Location": f"{V}/sobjects/Account/{account_id}"}
    assert items[3]["body"] is None and items[3]["httpHeaders"] == {}
    assert items[4]["body"]["Description"] == "Ref Co!"
    contact = client.get(V + f"/sobjects/Contact/{items[1]['body']['id']}").json()
    assert contact["AccountId"] == account_id


def test_composite_all_or_none_rolls_back(client: EmulatorClient) -> None:
    reply = _composite(
        client,
        _sub("a", "POST", "/sobjects/Account", {"Name": "Undone"}),
        _sub("b", "POST", "/sobjects/Account", {"Industry": "No name"}),
        _sub("c", "POST", "/sobjects/Account", {"Name": "Never run"}),
        all_or_none=True,
    )
    items = reply.json()["compositeResponse"]
    assert reply.status_code == 200
    assert items[0] == {"body": [HALTED], "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "a"}
    assert items[1]["httpStatusCode"] == 400 and items[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert items[2]["body"] == [HALTED] and items[2]["httpStatusCode"] == 400
    assert _count(client) == 0


def test_composite_without_all_or_none_commits_the_rest(client: EmulatorClient) -> None:
    reply = _composite(
        client,
        _sub("bad", "POST", "/sobjects/Account", {"Industry": "No name"}),
        _sub("dependent", "POST", "/sobjects/Contact", {"LastName": "X", "AccountId": "@{bad.id}"}),
        _sub("good", "POST", "/sobjects/Account", {"Name": "Kept"}),
        _sub("nowhere", "GET", "/no/such/resource"),
    )
    items = reply.json()["compositeResponse"]
    assert [i["httpStatusCode"] for i in items] == [400, 400, 201, 404]
    assert items[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert "bad.id" in items[1]["body"][0]["message"]
    assert items[3]["body"] == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    assert _count(client) == 1 and _count(client, "Contact") == 0


def test_composite_all_or_none_applies_to_collections_subrequests(client: EmulatorClient) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": "Fine"}, {"attributes": {"type": "Account"}}]
    reply = _composite(
        client,
        _sub("first", "POST", "/sobjects/Account", {"Name": "Before"}),
        _sub("coll", "POST", "/composite/sobjects", {"allOrNone": False, "records": records}),
        all_or_none=True,
    )
    items = reply.json()["compositeResponse"]
    assert items[0]["body"] == [HALTED]
    assert items[1]["httpStatusCode"] == 200
    assert items[1]["body"][0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert _count(client) == 0


def test_composite_request_validation(client: EmulatorClient) -> None:
    subs = [_sub(f"r{i}", "GET", "/limits") for i in range(26)]
    reply = _composite(client, *subs)
    assert reply.status_code == 400 and reply.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
    assert "25" in reply.json()[0]["message"]
    duplicate = _composite(client, _sub("x", "GET", "/limits"), _sub("x", "GET", "/limits"))
    assert duplicate.status_code == 400 and "Duplicate referenceId" in duplicate.json()[0]["message"]
    for body in ({}, {"compositeRequest": []}, {"compositeRequest": [{"url": "x"}]},
                 {"compositeRequest": [_sub("a", "GET", "/limits")], "allOrNone": "true"}):
        assert client.post(V + "/composite", json=body).status_code == 400
    assert client.post(V + "/composite", json={"compositeRequest": [{"method": "GET", "url": V + "/limits"}]}
                       ).json()[0]["errorCode"] == "INVALID_INPUT"


def test_batch_shapes_and_halt_on_error(client: EmulatorClient) -> None:
    version = V.rsplit("/", 1)[1]
    reply = client.post(V + "/composite/batch", json={"batchRequests": [
        {"method": "POST", "url": f"{version}/sobjects/Account", "richInput": {"Name": "Batched"}},
        {"method": "GET", "url": f"{version}/sobjects/Account/001000000000000AAA"},
        {"method": "GET", "url": f"{version}/limits"},
    ]})
    assert reply.status_code == 200
    body = reply.json()
    assert body["hasErrors"] is True
    assert [r["statusCode"] for r in body["results"]] == [201, 404, 200]
    assert body["results"][0]["result"]["success"] is True
    halted = client.post(V + "/composite/batch", json={"haltOnError": True, "batchRequests": [
        {"method": "POST", "url": f"{version}/sobjects/Account", "richInput": {}},
        {"method": "POST", "url": f"{version}/sobjects/Account", "richInput": {"Name": "Skipped"}},
    ]}).json()
    assert halted["results"][1] == {"statusCode": 412, "result": [
        {"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}]}
    assert _count(client) == 1
    over = client.post(V + "/composite/batch", json={"batchRequests": [
        {"method": "GET", "url": f"{version}/limits"}] * 26})
    assert over.status_code == 400 and over.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
    ok = client.post(V + "/composite/batch", json={"batchRequests": [{"method": "GET", "url": f"{version}/limits"}]})
    assert ok.json()["hasErrors"] is False


def test_graph_rolls_back_per_graph(client: EmulatorClient) -> None:
    reply = client.post(V + "/composite/graph", json={"graphs": [
        {"graphId": "good", "compositeRequest": [
            _sub("a", "POST", "/sobjects/Account", {"Name": "Graph A"}),
            _sub("c", "POST", "/sobjects/Contact", {"LastName": "G", "AccountId": "@{a.id}"})]},
        {"graphId": "bad", "compositeRequest": [
            _sub("a", "POST", "/sobjects/Account", {"Name": "Graph B"}),
            _sub("b", "POST", "/sobjects/Account", {})]},
    ]})
    assert reply.status_code == 200
    graphs = reply.json()["graphs"]
    assert [(g["graphId"], g["isSuccessful"]) for g in graphs] == [("good", True), ("bad", False)]
    assert [i["httpStatusCode"] for i in graphs[0]["graphResponse"]["compositeResponse"]] == [201, 201]
    assert graphs[1]["graphResponse"]["compositeResponse"][0]["body"] == [HALTED]
    assert _count(client) == 1 and _count(client, "Contact") == 1
    assert client.post(V + "/composite/graph", json={"graphs": []}).status_code == 400
    same_id = {"graphs": [{"graphId": "g", "compositeRequest": [_sub("a", "GET", "/limits")]}] * 2}
    assert client.post(V + "/composite/graph", json=same_id).status_code == 400


def _tree_record(ref: str, name: str | None, *contacts: str) -> dict:
    record: dict = {"attributes": {"type": "Account", "referenceId": ref}}
    if name is not None:
        record["Name"] = name
    if contacts:
        record["Contacts"] = {"records": [
            {"attributes": {"type": "Contact", "referenceId": c}, "LastName": c} for c in contacts]}
    return record


def test_tree_creates_nested_records(client: EmulatorClient) -> None:
    reply = client.post(V + "/composite/tree/Account", json={"records": [
        _tree_record("acc1", "Tree 1", "c1", "c2"), _tree_record("acc2", "Tree 2")]})
    assert reply.status_code == 201
    body = reply.json()
    assert body["hasErrors"] is False
    assert [r["referenceId"] for r in body["results"]] == ["acc1", "c1", "c2", "acc2"]
    ids = {r["referenceId"]: r["id"] for r in body["results"]}
    contact = client.get(V + f"/sobjects/Contact/{ids['c2']}").json()
    assert contact["AccountId"] == ids["acc1"]


def test_tree_is_all_or_nothing_and_validated(client: EmulatorClient) -> None:
    reply = client.post(V + "/composite/tree/Account", json={"records": [
        _tree_record("ok", "Fine", "k1"), _tree_record("broken", None)]})
    assert reply.status_code == 400
    assert reply.json() == {"hasErrors": True, "results": [{"referenceId": "broken", "errors": [
        {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Name]", "fields": ["Name"]}]}]}
    assert _count(client) == 0 and _count(client, "Contact") == 0
    too_many = [_tree_record(f"r{i}", f"N{i}") for i in range(201)]
    over = client.post(V + "/composite/tree/Account", json={"records": too_many})
    assert over.status_code == 400 and over.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    wrong_type = {"records": [{"attributes": {"type": "Contact", "referenceId": "x"}, "LastName": "x"}]}
    assert client.post(V + "/composite/tree/Account", json=wrong_type).status_code == 400
    no_ref = {"records": [{"attributes": {"type": "Account"}, "Name": "x"}]}
    assert client.post(V + "/composite/tree/Account", json=no_ref).status_code == 400
    dup = {"records": [_tree_record("same", "A"), _tree_record("same", "B")]}
    assert client.post(V + "/composite/tree/Account", json=dup).status_code == 400
    assert _count(client) == 0
