"""The REST API over loopback HTTPS: every route, Salesforce's shapes, status codes and errors."""

from __future__ import annotations

import pytest
from sf_emulator_client import V, EmulatorClient, emulator_with_schema

from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

SCHEMA = {"fields": {"Account": {"Ext_Id__c": {"type": "text", "length": 40, "externalId": True}}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with emulator_with_schema(tmp_path_factory.mktemp("rest-api"), SCHEMA) as emulator:
        yield emulator


@pytest.fixture
def client(server) -> EmulatorClient:
    server.reset()
    return EmulatorClient(server)


def _create(client: EmulatorClient, **values) -> str:
    reply = client.post(V + "/sobjects/Account/", json={"Name": "Acme", **values})
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


# -- versions and resources ----------------------------------------------------------------------


def test_versions_need_no_session(client: EmulatorClient) -> None:
    for path in ("/services/data", "/services/data/"):
        reply = client.get(path, auth=False)
        assert reply.status_code == 200
        assert reply.headers["Content-Type"] == "application/json;charset=UTF-8"
        versions = reply.json()
        assert [v["version"] for v in versions] == [f"{n}.0" for n in range(31, 67)]
        assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in versions


@pytest.mark.parametrize("version", ["31.0", "46.0", "66.0"])
def test_every_served_version_answers(client: EmulatorClient, version: str) -> None:
    for path in (f"/services/data/v{version}", f"/services/data/v{version}/"):
        reply = client.get(path)
        assert reply.status_code == 200
        assert reply.json()["sobjects"] == f"/services/data/v{version}/sobjects"
        assert reply.json()["query"] == f"/services/data/v{version}/query"


@pytest.mark.parametrize("version", ["30.0", "67.0", "62"])
def test_unserved_version_is_not_found(client: EmulatorClient, version: str) -> None:
    reply = client.get(f"/services/data/v{version}/sobjects")
    assert reply.status_code == 404
    assert reply.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


def test_session_is_required(client: EmulatorClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        reply = client.get(V + "/sobjects", auth=False, headers=headers)
        assert reply.status_code == 401
        assert reply.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert client.get(V + "/sobjects", headers={"Authorization": f"OAuth {client.token()}"}).status_code == 200


# -- sObjects ------------------------------------------------------------------------------------


def test_describe_global_basic_info_and_describe(client: EmulatorClient) -> None:
    names = {s["name"] for s in client.get(V + "/sobjects").json()["sobjects"]}
    assert {"Account", "Contact"} <= names
    info = client.get(V + "/sobjects/Account")
    assert info.status_code == 200 and info.json()["objectDescribe"]["name"] == "Account"
    describe = client.get(V + "/sobjects/Account/describe/").json()
    assert "Ext_Id__c" in {f["name"] for f in describe["fields"]}
    assert client.get(V + "/sobjects/NoSuchThing__c/describe").status_code == 404


def test_crud_round_trip(client: EmulatorClient) -> None:
    reply = client.post(V + "/sobjects/Account", json={"Name": "Acme", "Industry": "Energy"})
    assert reply.status_code == 201
    body = reply.json()
    assert body == {"id": body["id"], "success": True, "errors": []}
    record_id = body["id"]
    record = client.get(f"{V}/sobjects/Account/{record_id}").json()
    assert record["attributes"]["type"] == "Account" and record["Name"] == "Acme"
    partial = client.get(f"{V}/sobjects/Account/{record_id}", params={"fields": "Name,Industry"}).json()
    assert set(partial) == {"attributes", "Name", "Industry", "Id"} or set(partial) == {"attributes", "Name", "Industry"}
    # Bodies echoing "attributes" are accepted, as simple-salesforce sends them.
    update = client.patch(f"{V}/sobjects/Account/{record_id}/",
                          json={"attributes": {"type": "Account"}, "Industry": "Banking"})
    assert (update.status_code, update.content) == (204, b"")
    assert client.get(f"{V}/sobjects/Account/{record_id}").json()["Industry"] == "Banking"
    assert client.delete(f"{V}/sobjects/Account/{record_id}").status_code == 204
    gone = client.get(f"{V}/sobjects/Account/{record_id}")
    assert gone.status_code == 404
    assert gone.json()[0]["errorCode"] in {"NOT_FOUND", "ENTITY_IS_DELETED"}


def test_store_validation_errors_are_rest_error_lists(client: EmulatorClient) -> None:
    reply = client.post(V + "/sobjects/Account", json={})
    assert reply.status_code == 400
    error = reply.json()[0]
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING" and error["fields"] == ["Name"]


def test_malformed_json_and_wrong_method(client: EmulatorClient) -> None:
    bad = client.post(V + "/sobjects/Account", data="{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    array = client.post(V + "/sobjects/Account", json=[{"Name": "x"}])
    assert array.status_code == 400 and array.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    wrong = client.request("PUT", f"{V}/sobjects/Account/001000000000001AAA", json={})
    assert wrong.status_code == 405
    assert wrong.json() == [{"message": "HTTP Method 'PUT' not allowed. Allowed are DELETE,GET,PATCH",
                             "errorCode": "METHOD_NOT_ALLOWED"}]
    assert client.get(V + "/nothing/here").status_code == 404


# -- upsert by external id -----------------------------------------------------------------------


def test_upsert_create_update_and_versions(client: EmulatorClient) -> None:
    path = f"{V}/sobjects/Account/Ext_Id__c/E-1"
    created = client.patch(path, json={"Name": "Ext"})
    assert created.status_code == 201
    body = created.json()
    assert body == {"id": body["id"], "success": True, "errors": [], "created": True}
    updated = client.patch(path, json={"Name": "Ext 2"})
    assert updated.status_code == 200
    assert updated.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    old_api = client.patch("/services/data/v45.0/sobjects/Account/Ext_Id__c/E-1", json={"Name": "Ext 3"})
    assert (old_api.status_code, old_api.content) == (204, b"")
    fetched = client.get(path, params={"fields": "Name"}).json()
    assert fetched["Name"] == "Ext 3"
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404


def test_upsert_matching_several_records_is_300_with_urls(client: EmulatorClient) -> None:
    first, second = _create(client, Ext_Id__c="DUP"), _create(client, Ext_Id__c="DUP")
    reply = client.patch(f"{V}/sobjects/Account/Ext_Id__c/DUP", json={"Name": "x"})
    assert reply.status_code == 300
    urls = reply.json()
    assert isinstance(urls, list) and len(urls) == 2
    assert {u.rsplit("/", 1)[1] for u in urls} == {first, second}


# -- query -----------------------------------------------------------------------------------------


def test_query_pagination_with_batch_size(client: EmulatorClient, server: EmulatorServer) -> None:
    server.call(lambda: server.state.store.create_many("Account", [{"Name": f"A{i:03d}"} for i in range(450)]))
    first = client.get(V + "/query/", params={"q": "SELECT Id, Name FROM Account"},
                       headers={"Sforce-Query-Options": "batchSize=200"})
    assert first.status_code == 200
    page = first.json()
    assert page["totalSize"] == 450 and page["done"] is False and len(page["records"]) == 200
    names = [r["Name"] for r in page["records"]]
    while not page["done"]:
        assert page["nextRecordsUrl"].startswith(V + "/query/")
        page = client.get(page["nextRecordsUrl"]).json()
        names += [r["Name"] for r in page["records"]]
    assert sorted(names) == [f"A{i:03d}" for i in range(450)]
    default = client.get(V + "/query", params={"q": "SELECT Id FROM Account"}).json()
    assert default["done"] is True and len(default["records"]) == 450 and "nextRecordsUrl" not in default


def test_query_all_includes_deleted(client: EmulatorClient) -> None:
    record_id = _create(client, Name="Deleted one")
    client.delete(f"{V}/sobjects/Account/{record_id}")
    soql = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{record_id}'"
    assert client.get(V + "/query", params={"q": soql}).json()["totalSize"] == 0
    rows = client.get(V + "/queryAll/", params={"q": soql}).json()["records"]
    assert [r["IsDeleted"] for r in rows] == [True]


def test_query_errors(client: EmulatorClient) -> None:
    missing = client.get(V + "/query")
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "MALFORMED_QUERY"
    bad = client.get(V + "/query", params={"q": "SELECT Nope__c FROM Account"})
    assert bad.status_code == 400
    assert bad.json()[0]["errorCode"] in {"INVALID_FIELD", "MALFORMED_QUERY"}
    assert client.get(V + "/query/01gBOGUS-2000").status_code in (400, 404)


# -- limits and usage ------------------------------------------------------------------------------


def test_limits_and_sforce_limit_info(client: EmulatorClient, server: EmulatorServer) -> None:
    client.token()
    first = client.get(V + "/limits/")
    assert first.status_code == 200
    limits = first.json()
    daily = limits["DailyApiRequests"]
    assert daily["Max"] == 15000 and daily["Remaining"] == 15000 - 1
    for key in ("DailyBulkApiBatches", "DailyStreamingApiEvents", "DataStorageMB", "FileStorageMB"):
        assert set(limits[key]) >= {"Max", "Remaining"}
    assert first.headers["Sforce-Limit-Info"].startswith("api-usage=1/15000")
    assert "per-app-api-usage=1/15000(appName=" in first.headers["Sforce-Limit-Info"]
    error = client.get(V + "/sobjects/Account/001000000000009AAA")
    assert error.headers["Sforce-Limit-Info"].startswith("api-usage=2/15000")
    assert "Sforce-Limit-Info" not in client.password_login().headers  # OAuth is not an API call


def test_daily_limit_is_enforced(client: EmulatorClient, server: EmulatorServer) -> None:
    token = client.token()
    server.call(lambda: setattr(server.state.config, "daily_api_limit", 2))
    try:
        assert [client.get(V + "/limits", token=token).status_code for _ in range(3)] == [200, 200, 403]
        over = client.get(V + "/limits", token=token)
        assert over.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    finally:
        server.call(lambda: setattr(server.state.config, "daily_api_limit", 15000))


def test_unexpected_exception_is_unknown_exception_without_traceback(client: EmulatorClient, server) -> None:
    store = server.state.store
    original = store.describe_global

    def boom(**_):
        raise RuntimeError("secret internals")

    store.describe_global = boom
    try:
        reply = client.get(V + "/sobjects")
    finally:
        store.describe_global = original
    assert reply.status_code == 500
    error = reply.json()[0]
    assert error["errorCode"] == "UNKNOWN_EXCEPTION"
    assert "secret internals" not in reply.text and "Traceback" not in reply.text
