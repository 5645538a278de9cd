"""jsforce, the widely used Salesforce client for Node.js (npm ``jsforce``, pinned in
tests/emulator/node/package.json), works against the emulator unchanged: only its login URL points
at the emulator and Node trusts the emulator's CA (``NODE_EXTRA_CA_CERTS``).

Each test runs one scenario script of tests/emulator/node/jsforce/ and asserts on the JSON it
prints, so a failure names the jsforce call that broke. The emulator is the one with
``Account.External_Id__c`` (``custom_emulator``) for the upserts.
"""

from __future__ import annotations

import json

import pytest
from node_clients import NodeScripts, node_scripts  # noqa: F401  (the fixture)
from sf_emulator_client import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, EmulatorClient


@pytest.fixture
def jsforce_run(custom_emulator, node_scripts: NodeScripts):
    """Run ``jsforce/<scenario>.mjs`` against the emulator, with the login arguments and ``extra``."""

    def run(scenario: str, **extra: str) -> dict:
        args = {"url": custom_emulator.url, "username": USERNAME, "password": PASSWORD,
                "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, **extra}
        return node_scripts.run(f"jsforce/{scenario}.mjs", json.dumps(args), ca_bundle=custom_emulator.ca_bundle)

    return run


@pytest.fixture
def emulator_client(custom_emulator) -> EmulatorClient:
    """Plain requests to the same emulator: setup, the control API and its request counters."""
    return EmulatorClient(custom_emulator)


def requests_matching(client: EmulatorClient, method: str, path: str) -> int:
    """How many requests the emulator saw with ``method`` on ``path`` (a trailing ``/`` matches
    every path below it)."""
    seen = client.stats()["requests"]
    if path.endswith("/"):
        return sum(count for key, count in seen.items() if key.startswith(f"{method} {path}"))
    return seen.get(f"{method} {path}", 0)


def test_rest_crud_collections_and_queries(jsforce_run, emulator_client: EmulatorClient) -> None:
    out = jsforce_run("rest")
    assert out["crud"] == {"created": True, "name": "Node One", "industry": "Banking", "upsert": [True, False, True]}
    assert out["deleted"]["errorCode"] == "NOT_FOUND"
    assert out["collections"] == {
        "created": 450, "retrieved": ["L000", "L001", "L002"], "updated": [True, True, True],
        "rolledBack": [[False, ["ALL_OR_NONE_OPERATION_ROLLED_BACK"]], [False, ["REQUIRED_FIELD_MISSING"]]],
        "removed": 10, "upserted": [False, True],
        "repeated": [[False, ["DUPLICATE_EXTERNAL_ID"]], [False, ["DUPLICATE_EXTERNAL_ID"]]]}
    assert out["queryMore"] == {"totalSize": 440, "pages": [[200, False], [200, False], [40, True]], "last": "L439"}
    assert out["autoFetch"] == {"totalSize": 440, "streamed": 440, "distinct": 440, "capped": 300}
    assert out["relationships"] == {"children": ["L000", "L001"], "childrenTotal": 2, "parent": "Parent",
                                    "like": 10, "count": 440, "deleted": 10}
    describe = out["describe"]
    assert describe["search"] == ["Account"] and describe["keyPrefix"] == "001"
    assert describe["externalId"] is True and describe["global"] is True
    assert describe["badQuery"]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Nope__c' on entity 'Account'" in describe["badQuery"]["message"]
    # jsforce sent its arrays through sObject Collections and followed nextRecordsUrl itself
    v = "/services/data/v62.0"
    assert requests_matching(emulator_client, "POST", f"{v}/composite/sobjects") == 4  # 3 creates + the rolled-back one
    assert requests_matching(emulator_client, "POST", f"{v}/composite/sobjects/Contact") == 1  # the retrieve of 3 ids
    assert requests_matching(emulator_client, "PATCH", f"{v}/composite/sobjects/Account/External_Id__c") == 2
    assert requests_matching(emulator_client, "DELETE", f"{v}/composite/sobjects") == 1
    assert requests_matching(emulator_client, "GET", f"{v}/query/") == 2 + 2 + 1  # queryMore x2, autoFetch x2, capped x1


def test_logins_refresh_and_logouts(jsforce_run, emulator_client: EmulatorClient, custom_admin) -> None:
    stale = emulator_client.token()
    refresh_token = custom_admin.refresh_token(USERNAME, CLIENT_ID)
    custom_admin.expire_sessions()
    out = jsforce_run("auth", staleAccessToken=stale, refreshToken=refresh_token)
    user_id, org_id = out["oauth"]["userId"], out["oauth"]["organizationId"]
    assert user_id.startswith("005") and org_id.startswith("00D")
    assert out["oauth"]["instanceUrl"] == emulator_client.url
    assert out["identity"] == {"username": USERNAME, "userId": user_id, "organizationId": org_id}
    assert out["soap"] == out["oauth"]  # the SOAP login() names the same user, org and instance
    assert out["soapSessionQuery"] == [USERNAME]
    # one refresh of the expired token, then the retried call; this org rotates refresh tokens
    assert out["refresh"] == {"userCount": 1, "refreshes": [{"newAccessToken": True, "rotatedRefreshToken": True}],
                              "keptRefreshToken": True}
    assert out["afterLogout"] == {"oauth": "INVALID_SESSION_ID", "soap": "INVALID_SESSION_ID"}
    # each call met an expired session and succeeded after one new login: [result, refreshes so far]
    expected = {"rest": [1, 1], "soap": [USERNAME, 2], "bulk": [True, 3], "bulk2": [1, 4]}
    assert out["sessionExpiry"] == {"oauth": expected, "soap": expected}
    assert requests_matching(emulator_client, "POST", "/services/oauth2/revoke") == 1
    assert out["badLogins"] == {
        "oauthPassword": ["invalid_grant", "authentication failure"],
        "oauthClient": ["invalid_client_id", "client identifier invalid"],
        "soapPassword": ["Error", "INVALID_LOGIN: Invalid username, password, security token; or user locked out."],
        "badToken": "INVALID_SESSION_ID"}


def test_bulk_v1_load_job_and_query(jsforce_run, emulator_client: EmulatorClient) -> None:
    out = jsforce_run("bulk")
    assert out["load"] == {"inserted": [[True, True]] * 5, "upserted": [[True, False], [True, True]], "sameId": True,
                           "mixed": [[True, []], [False, ["REQUIRED_FIELD_MISSING"]]]}
    assert out["job"] == {"deleted": [True], "object": "Account", "operation": "delete", "contentType": "CSV",
                          "batches": ["Completed"], "state": "Closed", "processed": 1}
    assert out["query"] == [["Bulk 0", "B-0"], ["Bulk 1 again", "B-1"], ["Bulk 2", "B-2"], ["Bulk 3", "B-3"],
                            ["Bulk 9", "B-9"]]
    # Q1, Q10..Q19, Q100..Q199: 111 through Collections; then 300 updated and 300 deleted by Bulk 1.0 jobs
    assert out["queryWrites"] == {"few": 111, "many": 300, "titled": 300, "destroyed": 300, "left": 0}
    # jobs created: 3 loads, the delete job, the bulk query, the 2 query writes, the 3 failures (the
    # unknown object's refused at creation)
    assert requests_matching(emulator_client, "POST", "/services/async/62.0/job") == 3 + 1 + 1 + 2 + 3
    failed = out["failedBatches"]
    assert failed["unknownColumn"] == "InvalidBatch : Field name not found : Nope__c"
    assert failed["unknownObject"] == "Unable to find object: Nope__c"
    assert failed["badQuery"].startswith("InvalidBatch : SELECT Nope__c FROM Account\n       ^\nERROR at Row:1:Column:8\n")


def test_bulk_v2_ingest_and_query(jsforce_run, emulator_client: EmulatorClient) -> None:
    out = jsforce_run("bulk2")
    assert out["insert"] == {"successful": [["true", name] for name in ("Ada", "Bea", "Cy", "Di", "Ed")],
                             "failed": [["REQUIRED_FIELD_MISSING", "No LastName"]], "unprocessed": 0}
    assert out["upsert"] == {"first": ["true"], "again": [["X-1", "false"], ["X-2", "true"]], "sameId": True}
    assert out["delete"] == 1
    assert out["query"] == ["Bea", "Cy", "Di", "Ed"]
    # one results page per query job (Salesforce's pages hold up to ~1 GB): jsforce stopped at
    # Sforce-Locator "null" (the query and queryAll jobs; the bad query's job failed)
    seen = emulator_client.stats()["requests"]
    assert sum(count for key, count in seen.items()
               if key.startswith("GET /services/data/v62.0/jobs/query/") and key.endswith("/results")) == 2
    assert out["queryAll"] == ["Ada"]
    assert out["failures"]["unknownColumn"] == [
        None, "Ingest job failed to complete due to: InvalidBatch : Field name not found : Nope__c"]
    code, message = out["failures"]["badQuery"]
    assert code == "INVALID_FIELD" and "No such column 'Nope__c' on entity 'Account'" in message


def test_soap_calls(jsforce_run) -> None:
    out = jsforce_run("soap")
    assert out["write"] == {"created": [True, True], "updated": [True], "industry": "Energy",
                            "upserted": [[True, True], [True, False], [True, True]],
                            "repeated": [[False, ["DUPLICATE_EXTERNAL_ID"]], [False, ["DUPLICATE_EXTERNAL_ID"]]]}
    assert out["convertLead"] == {"success": True, "prefixes": ["001", "003", "006"], "contact": "Turing",
                                  "contactAccount": True, "isConverted": True, "status": "Closed - Converted"}
    # jsforce's generic _invoke leaves merge's booleans as the wire's text
    assert out["other"] == {"merged": ["true", True], "deleted": [True], "emptied": [True],
                            "user": [USERNAME, True], "timestamp": "string"}


def test_streaming_pushtopic_cdc_and_auth_failure(jsforce_run, emulator_client: EmulatorClient) -> None:
    assert emulator_client.admin("POST", "streaming/config", {"cdc_entities": ["Account"]}).status_code == 200
    out = jsforce_run("streaming")
    assert out["live"] == [["created", 2, "Streamed"], ["updated", 3, "Streamed Again"]]
    assert out["replay"] == {"events": [["created", 1, "Before"], ["created", 2, "Streamed"],
                                        ["updated", 3, "Streamed Again"]], "before": True}
    assert out["cdc"] == [["CREATE", True, "Captured", []],
                          ["UPDATE", True, "Captured Again", ["Name", "LastModifiedDate"]]]
    assert out["authFailure"] == {"channel": "/meta/connect", "error": "401::Authentication invalid",
                                  "advice": {"reconnect": "none", "interval": 0}}
