"""Faults that strike after the request was carried out (a committed write whose reply is lost, a
reply cut mid-body), raw bodies and session expiry - observed by a plain client over loopback."""

from __future__ import annotations

import pytest
import requests
from sf_emulator_client import V, EmulatorClient


@pytest.fixture
def client(salesforce_emulator_reset) -> EmulatorClient:
    c = EmulatorClient(salesforce_emulator_reset)
    c.token()
    return c


def _fault(client: EmulatorClient, **rule) -> dict:
    reply = client.admin("POST", "faults", rule)
    assert reply.status_code == 201, reply.text
    return reply.json()


def _names(client: EmulatorClient, name: str) -> int:
    reply = client.get(V + "/query", params={"q": f"SELECT Id FROM Account WHERE Name = '{name}'"})
    return reply.json()["totalSize"]


def test_lost_reply_commits_the_write(client: EmulatorClient) -> None:
    _fault(client, lose_reply=True, method="POST", path_prefix=V + "/sobjects/Account", count=1)
    with pytest.raises(requests.ConnectionError):
        client.post(V + "/sobjects/Account", json={"Name": "Lost reply"})
    assert _names(client, "Lost reply") == 1  # Salesforce did it; the client cannot know
    stats = client.stats()
    assert stats["connections_dropped"] == 1 and stats["faults_injected"] == 1


def test_lost_reply_on_a_collections_insert(client: EmulatorClient) -> None:
    _fault(client, lose_reply=True, method="POST", path_prefix=V + "/composite/sobjects", count=1)
    records = [{"attributes": {"type": "Account"}, "Name": f"Coll {i}"} for i in range(3)]
    with pytest.raises(requests.ConnectionError):
        client.post(V + "/composite/sobjects", json={"records": records})
    assert [_names(client, f"Coll {i}") for i in range(3)] == [1, 1, 1]


def test_drop_connection_does_not_commit(client: EmulatorClient) -> None:
    _fault(client, drop_connection=True, method="POST", path_prefix=V + "/sobjects/Account", count=1)
    with pytest.raises(requests.ConnectionError):
        client.post(V + "/sobjects/Account", json={"Name": "Never"})
    assert _names(client, "Never") == 0


def test_truncated_body_stops_short(client: EmulatorClient) -> None:
    full = client.get(V + "/sobjects").json()
    _fault(client, truncate_body=True, method="GET", path_prefix=V + "/sobjects", count=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client.get(V + "/sobjects")
    assert client.get(V + "/sobjects").json() == full  # the rule is spent


def test_truncated_streamed_body_stops_short(client: EmulatorClient) -> None:
    job = client.post(V + "/jobs/ingest", json={"object": "Account", "operation": "insert"}).json()
    body = "Name\n" + "".join(f"Streamed {i}\n" for i in range(200))
    assert client.request("PUT", f"{V}/jobs/ingest/{job['id']}/batches", data=body,
                          headers={"Content-Type": "text/csv"}).status_code == 201
    client.patch(f"{V}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    for _ in range(200):
        if client.get(f"{V}/jobs/ingest/{job['id']}").json()["state"] == "JobComplete":
            break
    else:
        pytest.fail("the ingest job did not complete")
    path = f"{V}/jobs/ingest/{job['id']}/successfulResults"
    full = client.get(path).text
    assert full.count("\n") == 201
    _fault(client, truncate_body=True, method="GET", path_prefix=path, count=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client.get(path)
    assert client.get(path).text == full


def test_raw_body_with_status_200(client: EmulatorClient) -> None:
    _fault(client, body="<html><title>Maintenance</title></html>", path_prefix=V + "/limits", count=1)
    reply = client.get(V + "/limits")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.text == "<html><title>Maintenance</title></html>"


def test_expire_session_makes_the_caller_reauthenticate(client: EmulatorClient) -> None:
    _fault(client, expire_session=True, path_prefix=V + "/limits", count=1)
    reply = client.get(V + "/limits")
    assert reply.status_code == 401
    assert reply.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert client.get(V + "/limits").status_code == 401  # expired for good, not for one call
    client._token = None  # log in again, as a client does on INVALID_SESSION_ID
    client.token()
    assert client.get(V + "/limits").status_code == 200


@pytest.mark.parametrize("rule", [
    {"lose_reply": True, "drop_connection": True},
    {"truncate_body": True, "status": 503},
    {"body": "x", "error_code": "SERVER_UNAVAILABLE"},
    {"lose_reply": True, "truncate_body": True},
])
def test_a_rule_has_one_fate(client: EmulatorClient, rule: dict) -> None:
    reply = client.admin("POST", "faults", rule)
    assert reply.status_code == 400
    assert "one fate" in reply.text or "exclude" in reply.text


def test_path_suffix_narrows_a_rule(client: EmulatorClient) -> None:
    _fault(client, body="cut", path_prefix=V + "/sobjects/", path_suffix="/describe", count=1)
    assert client.get(V + "/sobjects/Account").status_code == 200  # no match: the rule is not spent
    assert client.get(V + "/sobjects/Account/describe").text == "cut"
