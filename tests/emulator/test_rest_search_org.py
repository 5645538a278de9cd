"""REST query, search and org resources over loopback: shapes, status codes and errors."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from sf_emulator_client import V, EmulatorClient

from airflow_provider_salesforce_suite.emulator.config import ApexRestRoute


@pytest.fixture
def client(salesforce_emulator_reset) -> EmulatorClient:
    return EmulatorClient(salesforce_emulator_reset)


def _create(client: EmulatorClient, sobject: str, **values) -> str:
    reply = client.post(f"{V}/sobjects/{sobject}/", json=values)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def _error(reply, status: int, code: str) -> str:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert isinstance(body, list) and body[0]["errorCode"] == code, body
    return body[0]["message"]


@pytest.fixture
def accounts(client: EmulatorClient) -> dict[str, str]:
    return {
        "acme": _create(client, "Account", Name="Acme Corp", Industry="Energy", Phone="555-0101"),
        "acme_labs": _create(client, "Account", Name="Acme Labs", Industry="Biotechnology"),
        "globex": _create(client, "Account", Name="Globex"),
    }


# -- SOSL ---------------------------------------------------------------------------------------


def test_search_returning_fields_where_and_limit(client, accounts) -> None:
    contact = _create(client, "Contact", LastName="Acme", Email="jo@acme.example", AccountId=accounts["acme"])
    sosl = "FIND {Acme} IN ALL FIELDS RETURNING Account(Id, Name WHERE Industry = 'Energy'), Contact(Email)"
    reply = client.get(f"{V}/search/", params={"q": sosl})
    assert reply.status_code == 200
    records = reply.json()["searchRecords"]
    assert records == [
        {"attributes": {"type": "Account", "url": f"{V}/sobjects/Account/{accounts['acme']}"},
         "Id": accounts["acme"], "Name": "Acme Corp"},
        {"attributes": {"type": "Contact", "url": f"{V}/sobjects/Contact/{contact}"}, "Email": "jo@acme.example"},
    ]


def test_search_scopes_wildcards_operators_and_overall_limit(client, accounts) -> None:
    def ids(sosl: str) -> set[str]:
        reply = client.get(f"{V}/search", params={"q": sosl})
        assert reply.status_code == 200, reply.text
        return {r["Id"] for r in reply.json()["searchRecords"]}

    assert ids("FIND {acme*} RETURNING Account(Id)") == {accounts["acme"], accounts["acme_labs"]}
    assert ids("FIND {Acme AND NOT Labs} RETURNING Account(Id)") == {accounts["acme"]}
    assert ids("FIND {Labs OR Globex} RETURNING Account(Id)") == {accounts["acme_labs"], accounts["globex"]}
    assert ids("FIND {555-0101} IN PHONE FIELDS RETURNING Account(Id)") == {accounts["acme"]}
    assert ids("FIND {Energy} IN NAME FIELDS RETURNING Account(Id)") == set()
    assert len(ids("FIND {acme} RETURNING Account(Id) LIMIT 1")) == 1
    # Without RETURNING every business object is searched and only ids come back.
    assert ids("FIND {Globex}") == {accounts["globex"]}


@pytest.mark.parametrize(
    ("sosl", "code", "fragment"),
    [
        ("FIND Acme", "MALFORMED_SEARCH", "enclosed in braces"),
        ("FIND {Acme} RETURNING", "MALFORMED_SEARCH", "ERROR at Row:1:Column:22"),
        ("FIND {Acme} RETURNING Account(Id WHERE Name = )", "MALFORMED_SEARCH", "unexpected token"),
        ("FIND {A}", "INVALID_SEARCH", "longer than one character"),
        ("FIND {Acme} RETURNING Acount(Id)", "INVALID_TYPE", "ERROR at Row:1:Column:23"),
        ("FIND {Acme} RETURNING Account(Nme)", "INVALID_FIELD", "ERROR at Row:1:Column:31\nNo such column 'Nme'"),
    ],
)
def test_search_errors(client, sosl: str, code: str, fragment: str) -> None:
    assert fragment in _error(client.get(f"{V}/search", params={"q": sosl}), 400, code)


def test_search_without_q_is_malformed(client) -> None:
    _error(client.get(f"{V}/search"), 400, "MALFORMED_SEARCH")


def test_parameterized_search_get_and_post(client, accounts) -> None:
    reply = client.get(f"{V}/parameterizedSearch/", params={
        "q": "Acme", "sobject": "Account", "Account.fields": "Id,Name", "Account.limit": "1", "overallLimit": "5"})
    assert reply.status_code == 200, reply.text
    records = reply.json()["searchRecords"]
    assert len(records) == 1 and set(records[0]) == {"attributes", "Id", "Name"}

    reply = client.post(f"{V}/parameterizedSearch", json={
        "q": "Acme", "fields": ["Id"], "in": "NAME",
        "sobjects": [{"name": "Account", "fields": ["Name"], "where": "Industry = 'Biotechnology'"}]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["searchRecords"] == [
        {"attributes": {"type": "Account", "url": f"{V}/sobjects/Account/{accounts['acme_labs']}"}, "Name": "Acme Labs"}]


@pytest.mark.parametrize(
    ("params", "code"),
    [({}, "MISSING_ARGUMENT"), ({"q": "Acme", "in": "BODY"}, "INVALID_SEARCH"),
     ({"q": "Acme", "overallLimit": "x"}, "INVALID_SEARCH"), ({"q": "Acme", "sobject": "Nope"}, "INVALID_TYPE")],
)
def test_parameterized_search_errors(client, params, code) -> None:
    _error(client.get(f"{V}/parameterizedSearch", params=params), 400, code)


# -- explain ----------------------------------------------------------------------------------


def test_explain_plans(client, accounts) -> None:
    reply = client.get(f"{V}/query/", params={"explain": "SELECT Id FROM Account WHERE Name = 'Globex' AND Industry = 'x'"})
    assert reply.status_code == 200
    plans = reply.json()["plans"]
    assert [p["leadingOperationType"] for p in plans] == ["Index", "TableScan"]
    assert plans[0]["fields"] == ["Name"] and plans[0]["sobjectType"] == "Account"
    assert plans[0]["sobjectCardinality"] == 3 and plans[0]["cardinality"] == 0
    assert plans[0]["relativeCost"] < plans[1]["relativeCost"]
    assert plans[1]["notes"][0]["fields"] == ["Industry"]
    assert set(plans[1]) == {"cardinality", "fields", "leadingOperationType", "notes", "relativeCost",
                             "sobjectCardinality", "sobjectType"}


def test_explain_errors_and_list_view(client) -> None:
    assert "ERROR at Row:1:Column" in _error(client.get(f"{V}/query", params={"explain": "SELECT FROM"}), 400,
                                              "MALFORMED_QUERY")
    _error(client.get(f"{V}/query", params={"explain": "SELECT Id FROM Nope"}), 400, "INVALID_TYPE")
    view = client.get(f"{V}/sobjects/Account/listviews").json()["listviews"][0]
    plans = client.get(f"{V}/query", params={"explain": view["id"]}).json()["plans"]
    assert plans[0]["sobjectType"] == "Account"
    _error(client.get(f"{V}/query", params={"explain": "00B000000000999"}), 400, "INVALID_ID_FIELD")
    # A plain query still runs.
    assert client.get(f"{V}/query", params={"q": "SELECT Id FROM Account"}).json()["totalSize"] == 0


# -- record counts, replication, recent --------------------------------------------------------


def test_record_counts(client, accounts) -> None:
    reply = client.get(f"{V}/limits/recordCount", params={"sObjects": "Account,Contact"})
    assert reply.json() == {"sObjects": [{"count": 3, "name": "Account"}, {"count": 0, "name": "Contact"}]}
    _error(client.get(f"{V}/limits/recordCount", params={"sObjects": "Nope"}), 400, "INVALID_TYPE")


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def test_updated_and_deleted(client, accounts) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    window = {"start": _stamp(now - dt.timedelta(hours=1)), "end": _stamp(now + dt.timedelta(hours=1))}
    assert client.delete(f"{V}/sobjects/Account/{accounts['globex']}").status_code == 204
    updated = client.get(f"{V}/sobjects/Account/updated/", params=window).json()
    assert set(updated["ids"]) == {accounts["acme"], accounts["acme_labs"]}
    assert updated["latestDateCovered"].endswith(":00.000+0000")
    deleted = client.get(f"{V}/sobjects/Account/deleted/", params=window).json()
    assert [d["id"] for d in deleted["deletedRecords"]] == [accounts["globex"]]
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    assert deleted["deletedRecords"][0]["deletedDate"].endswith("+0000")


@pytest.mark.parametrize("kind", ["updated", "deleted"])
def test_replication_window_errors(client, kind) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    cases = [
        ({"start": _stamp(now), "end": _stamp(now - dt.timedelta(hours=1))}, "precede"),
        ({"start": _stamp(now - dt.timedelta(days=31)), "end": _stamp(now)}, "30 days"),
        ({"start": "yesterday", "end": _stamp(now)}, "parse"),
    ]
    for params, fragment in cases:
        assert fragment in _error(client.get(f"{V}/sobjects/Account/{kind}", params=params), 400,
                                  "INVALID_REPLICATION_DATE")
    _error(client.get(f"{V}/sobjects/Account/{kind}", params={"start": _stamp(now)}), 400, "MISSING_ARGUMENT")
    _error(client.get(f"{V}/sobjects/Nope/{kind}", params={"start": _stamp(now), "end": _stamp(now)}), 404, "NOT_FOUND")


def test_recent(client, accounts) -> None:
    items = client.get(f"{V}/recent/", params={"limit": 2}).json()
    assert len(items) == 2
    assert {i["attributes"]["type"] for i in items} == {"Account"}
    assert set(items[0]) == {"attributes", "Id", "Name"}
    _error(client.get(f"{V}/recent", params={"limit": "0"}), 400, "INVALID_QUERY_PARAMETER_VALUE")


# -- list views ---------------------------------------------------------------------------------


def test_list_views(client, accounts) -> None:
    body = client.get(f"{V}/sobjects/Account/listviews").json()
    assert body["sobjectType"] == "Account" and body["done"] is True and body["size"] == 2
    names = {v["developerName"]: v for v in body["listviews"]}
    view = names["AllAccounts"]
    assert view["label"] == "All Accounts" and view["resultsUrl"].endswith(f"/listviews/{view['id']}/results")
    assert client.get(f"{V}/sobjects/Account/listviews/{view['id']}").json() == view
    described = client.get(f"{V}/sobjects/Account/listviews/{view['id']}/describe").json()
    assert described["query"].startswith("SELECT Name, Phone, Industry, Id") and described["sobjectType"] == "Account"
    assert described["columns"][0]["fieldNameOrPath"] == "Name"
    results = client.get(f"{V}/sobjects/Account/listviews/{view['id']}/results", params={"limit": 2}).json()
    assert results["size"] == 3 and results["done"] is False and len(results["records"]) == 2
    assert results["records"][0]["columns"][0] == {"fieldNameOrPath": "Name", "value": "Acme Corp"}
    rest = client.get(f"{V}/sobjects/Account/listviews/{view['id']}/results", params={"limit": 2, "offset": 2}).json()
    assert rest["done"] is True and rest["records"][0]["columns"][0]["value"] == "Globex"


def test_list_view_errors(client) -> None:
    contact_view = client.get(f"{V}/sobjects/Contact/listviews").json()["listviews"][0]["id"]
    _error(client.get(f"{V}/sobjects/Account/listviews/{contact_view}"), 404, "NOT_FOUND")
    _error(client.get(f"{V}/sobjects/Nope/listviews"), 404, "NOT_FOUND")
    account_view = client.get(f"{V}/sobjects/Account/listviews").json()["listviews"][0]["id"]
    _error(client.get(f"{V}/sobjects/Account/listviews/{account_view}/results", params={"limit": "x"}), 400,
           "INVALID_QUERY_PARAMETER_VALUE")


# -- Apex REST ----------------------------------------------------------------------------------


@pytest.fixture
def apex_routes(salesforce_emulator_reset):
    routes = [ApexRestRoute("/Accounts/*", "GET", {"accounts": 2}), ApexRestRoute("/Echo", "POST", echo=True, status=201)]
    config = salesforce_emulator_reset.state.config
    salesforce_emulator_reset.call(lambda: config.apex_rest.extend(routes))
    yield
    salesforce_emulator_reset.call(lambda: config.apex_rest.clear())


def test_apex_rest(client, apex_routes) -> None:
    assert client.get("/services/apexrest/Accounts/001xx").json() == {"accounts": 2}
    assert client.get("/services/apexrest/Accounts").json() == {"accounts": 2}
    reply = client.post("/services/apexrest/Echo", json={"x": [1]})
    assert reply.status_code == 201 and reply.json() == {"x": [1]}
    message = _error(client.get("/services/apexrest/Nope/1"), 404, "NOT_FOUND")
    assert message == "Could not find a match for URL /Nope/1"
    _error(client.delete("/services/apexrest/Echo"), 405, "METHOD_NOT_ALLOWED")
    assert client.get("/services/apexrest/Accounts/1", auth=False).status_code == 401


# -- passwords ----------------------------------------------------------------------------------


def test_user_password(client) -> None:
    user_id = client.get(f"{V}/query", params={"q": "SELECT Id FROM User LIMIT 1"}).json()["records"][0]["Id"]
    url = f"{V}/sobjects/User/{user_id}/password"
    assert client.get(url).json() == {"isExpired": False}
    reset = client.delete(url)
    assert reset.status_code == 200 and len(reset.json()["NewPassword"]) >= 8
    assert client.get(url).json() == {"isExpired": True}
    assert client.post(url, json={"NewPassword": "s3cretPassw0rd"}).status_code == 204
    assert client.get(url).json() == {"isExpired": False}
    _error(client.post(url, json={"NewPassword": "short"}), 400, "INVALID_NEW_PASSWORD")
    _error(client.post(url, json={}), 400, "REQUIRED_FIELD_MISSING")
    _error(client.get(f"{V}/sobjects/User/005000000000999/password"), 404, "NOT_FOUND")
    _error(client.get(f"{V}/sobjects/User/001000000000999/password"), 400, "MALFORMED_ID")


# -- quick actions ------------------------------------------------------------------------------


def test_quick_actions(client, accounts) -> None:
    global_actions = {a["name"] for a in client.get(f"{V}/quickActions").json()}
    assert {"NewTask", "NewContact", "NewCase"} <= global_actions
    account_actions = {a["name"]: a for a in client.get(f"{V}/sobjects/Account/quickActions").json()}
    assert account_actions["Account.NewContact"]["type"] == "Create"
    described = client.get(f"{V}/sobjects/Account/quickActions/Account.NewContact/describe").json()
    assert described["targetSobjectType"] == "Contact" and described["targetParentField"] == "AccountId"
    reply = client.post(f"{V}/sobjects/Account/quickActions/Account.NewContact",
                        json={"contextId": accounts["acme"], "record": {"LastName": "Quick"}})
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["success"] is True and created["contextId"] == accounts["acme"]
    contact = client.get(f"{V}/sobjects/Contact/{created['id']}").json()
    assert contact["AccountId"] == accounts["acme"] and contact["LastName"] == "Quick"
    task = client.post(f"{V}/quickActions/NewTask", json={"record": {"Subject": "Call back"}})
    assert task.status_code == 201 and task.json()["id"].startswith("00T")


def test_quick_action_errors(client, accounts) -> None:
    _error(client.get(f"{V}/quickActions/Nope/describe"), 404, "NOT_FOUND")
    _error(client.post(f"{V}/sobjects/Account/quickActions/Account.NewContact", json={"record": {"LastName": "X"}}),
           400, "REQUIRED_FIELD_MISSING")
    _error(client.post(f"{V}/sobjects/Account/quickActions/Account.NewContact",
                       json={"contextId": accounts["acme"], "record": {}}), 400, "REQUIRED_FIELD_MISSING")


# -- approvals and process rules ----------------------------------------------------------------


def test_approvals_submit_approve_reject(client, accounts) -> None:
    listed = client.get(f"{V}/process/approvals/").json()["approvals"]
    assert listed["Account"][0]["name"] == "Account_Review"
    submit = client.post(f"{V}/process/approvals/", json={"requests": [
        {"actionType": "Submit", "contextId": accounts["acme"], "comments": "please"}]})
    assert submit.status_code == 200, submit.text
    result = submit.json()[0]
    assert result["success"] is True and result["instanceStatus"] == "Pending" and result["instanceId"].startswith("04g")
    assert result["entityId"] == accounts["acme"] and len(result["actorIds"]) == 1
    again = client.post(f"{V}/process/approvals", json={"requests": [{"actionType": "Submit", "contextId": accounts["acme"]}]})
    assert _error(again, 400, "ALREADY_IN_PROCESS") == "Cannot submit object already in process."
    approve = client.post(f"{V}/process/approvals", json={"requests": [
        {"actionType": "Approve", "contextId": result["newWorkitemIds"][0], "comments": "ok"}]}).json()[0]
    assert approve["instanceStatus"] == "Approved" and approve["instanceId"] == result["instanceId"]
    second = client.post(f"{V}/process/approvals", json={"requests": [
        {"actionType": "Submit", "contextId": accounts["acme"]}]}).json()[0]
    reject = client.post(f"{V}/process/approvals", json={"requests": [
        {"actionType": "Reject", "contextId": second["newWorkitemIds"][0]}]}).json()[0]
    assert reject["instanceStatus"] == "Rejected"


def test_approval_errors(client) -> None:
    case = _create(client, "Case", Subject="Broken")
    reply = client.post(f"{V}/process/approvals", json={"requests": [{"actionType": "Submit", "contextId": case}]})
    assert _error(reply, 400, "NO_APPLICABLE_PROCESS") == "No applicable approval process was found."
    reply = client.post(f"{V}/process/approvals", json={"requests": [{"actionType": "Approve", "contextId": "04i000000000001"}]})
    _error(reply, 400, "INVALID_CROSS_REFERENCE_KEY")
    _error(client.post(f"{V}/process/approvals", json={"requests": [{"actionType": "Ship", "contextId": case}]}),
           400, "INVALID_OPERATION")
    _error(client.post(f"{V}/process/approvals", json={}), 400, "REQUIRED_FIELD_MISSING")


def test_process_rules(client, accounts) -> None:
    rules = client.get(f"{V}/process/rules").json()["rules"]
    assert rules["Account"][0]["object"] == "Account"
    assert set(client.get(f"{V}/process/rules/Account").json()["rules"]) == {"Account"}
    assert client.get(f"{V}/process/rules/Case").json() == {"rules": {}}
    reply = client.post(f"{V}/process/rules", json={"contextIds": [accounts["acme"]]})
    assert reply.json() == {"errors": None, "success": True}
    _error(client.post(f"{V}/process/rules", json={"contextIds": ["001000000000999"]}), 404, "NOT_FOUND")
    _error(client.post(f"{V}/process/rules", json={"contextIds": []}), 400, "REQUIRED_FIELD_MISSING")


# -- blobs ----------------------------------------------------------------------------------------


def test_blobs_stream_stored_bytes(client, accounts) -> None:
    payload = bytes(range(256)) * 5000 + b"tail"
    encoded = base64.b64encode(payload).decode()
    attachment = _create(client, "Attachment", Name="a.bin", ParentId=accounts["acme"], Body=encoded)
    reply = client.get(f"{V}/sobjects/Attachment/{attachment}/Body", stream=True)
    assert reply.status_code == 200 and int(reply.headers["Content-Length"]) == len(payload)
    assert reply.raw.read() == payload
    folder_doc = _create(client, "Document", Name="d.txt", FolderId=client.get(f"{V}/query", params={
        "q": "SELECT Id FROM User LIMIT 1"}).json()["records"][0]["Id"], Body=base64.b64encode(b"doc").decode())
    assert client.get(f"{V}/sobjects/Document/{folder_doc}/Body").content == b"doc"
    version = _create(client, "ContentVersion", Title="v", PathOnClient="v.txt", VersionData=base64.b64encode(b"v1").decode())
    assert client.get(f"{V}/sobjects/ContentVersion/{version}/VersionData").content == b"v1"


def test_blob_errors(client, accounts) -> None:
    _error(client.get(f"{V}/sobjects/Attachment/00P000000000999/Body"), 404, "NOT_FOUND")
    _error(client.get(f"{V}/sobjects/Attachment/{accounts['acme']}/Body"), 400, "MALFORMED_ID")
    _error(client.get(f"{V}/sobjects/Account/{accounts['acme']}/Body"), 404, "NOT_FOUND")
