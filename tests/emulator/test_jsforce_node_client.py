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
from node_clients import NodeScripts
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
def sf(custom_emulator) -> EmulatorClient:
    return EmulatorClient(custom_emulator)


def requests_matching(sf: EmulatorClient, method: str, path: str) -> int:
    """How many requests the emulator saw with ``method`` on ``path`` (a trailing ``/`` matches
    every path below it)."""
    seen = sf.stats()["requests"]
    if path.endswith("/"):
        return sum(count for key, count in seen.items() if key.startswith(f"{method} {path}"))
    return seen.get(f"{method} {path}", 0)


def test_rest_crud_collections_and_queries(jsforce_run, sf: EmulatorClient) -> None:
    out = jsforce_run("rest")
    assert out["crud"] == {"created": True, "name": "Node One", "industry": "Banking", "upsert": [True, False, True]}
    assert out["deleted"]["errorCode"] == "NOT_FOUND"
    assert out["collections"] == {
        "created": 450, "retrieved": ["L000", "L001", "L002"], "updated": [True, True, True],
        "rolledBack": [[False, ["ALL_OR_NONE_OPERATION_ROLLED_BACK"]], [False, ["REQUIRED_FIELD_MISSING"]]],
        "removed": 10, "upserted": [False, True]}
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
    assert requests_matching(sf, "POST", f"{v}/composite/sobjects") == 4  # 3 creates + the rolled-back one
    assert requests_matching(sf, "POST", f"{v}/composite/sobjects/Contact") == 1  # the retrieve of 3 ids
    assert requests_matching(sf, "PATCH", f"{v}/composite/sobjects/Account/External_Id__c") == 1
    assert requests_matching(sf, "DELETE", f"{v}/composite/sobjects") == 1
    assert requests_matching(sf, "GET", f"{v}/query/") == 2 + 2 + 1  # queryMore x2, autoFetch x2, capped x1
