"""The control API: deterministic and random faults, latency, dropped connections, lost and cut
replies (the request carried out first), raw bodies, session expiry, reset and stats - all
observed by a client over loopback."""

from __future__ import annotations

import time

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


def test_count_fails_exactly_the_next_n_requests(client: EmulatorClient) -> None:
    _fault(client, status=503, error_code="SERVER_UNAVAILABLE", count=2, retry_after=7)
    statuses = []
    for _ in range(3):
        reply = client.get(V + "/limits")
        statuses.append(reply.status_code)
        if reply.status_code == 503:
            assert reply.headers["Retry-After"] == "7"
            assert reply.headers["Content-Type"] == "application/json;charset=UTF-8"
            assert reply.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert statuses == [503, 503, 200]
    assert client.admin("GET", "faults").json() == []  # the spent rule is gone
    stats = client.stats()
    assert stats["faults_injected"] == 2
    assert stats["requests"][f"GET {V}/limits"] == 3
    assert stats["responses_by_status"]["503"] == 2


def test_request_limit_exceeded_fault(client: EmulatorClient) -> None:
    _fault(client, error_code="REQUEST_LIMIT_EXCEEDED", count=1)
    reply = client.get(V + "/sobjects")
    assert reply.status_code == 403
    assert reply.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_rate_is_probabilistic_and_reproducible_with_a_seed(client: EmulatorClient) -> None:
    def run() -> list[int]:
        client.admin("DELETE", "faults")
        _fault(client, status=503, rate=0.5, seed=42, path_prefix=V + "/limits")
        return [client.get(V + "/limits").status_code for _ in range(16)]

    first = run()
    assert set(first) == {200, 503}
    assert run() == first


def test_path_prefix_and_method_filters(client: EmulatorClient) -> None:
    _fault(client, status=503, path_prefix=V + "/query", method="GET")
    assert client.get(V + "/limits").status_code == 200
    assert client.get(V + "/query", params={"q": "SELECT Id FROM Account"}).status_code == 503
    assert len(client.admin("GET", "faults").json()) == 1  # no count: stays until deleted
    assert client.admin("DELETE", "faults").status_code == 204
    assert client.get(V + "/query", params={"q": "SELECT Id FROM Account"}).status_code != 503


def test_faults_on_oauth_use_the_oauth_format(client: EmulatorClient) -> None:
    _fault(client, status=503, error_code="SERVER_UNAVAILABLE", path_prefix="/services/oauth2/token", count=1)
    reply = client.password_login()
    assert reply.status_code == 503
    assert reply.json()["error"] == "SERVER_UNAVAILABLE"
    assert client.password_login().status_code == 200


def test_latency(client: EmulatorClient) -> None:
    _fault(client, latency_ms=300, count=1)
    started = time.monotonic()
    assert client.get(V + "/limits").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    client.get(V + "/limits")
    assert time.monotonic() - started < 0.3


def test_drop_connection(client: EmulatorClient) -> None:
    _fault(client, drop_connection=True, count=1)
    with pytest.raises(requests.ConnectionError):
        client.get(V + "/limits")
    assert client.get(V + "/limits").status_code == 200
    assert client.stats()["connections_dropped"] == 1


def test_admin_is_never_faulted_nor_counted(client: EmulatorClient) -> None:
    _fault(client, status=503, path_prefix="/")
    assert client.admin("GET", "stats").status_code == 200
    assert client.admin("GET", "faults").status_code == 200
    assert not any(k.split(" ", 1)[1].startswith("/__emulator__") for k in client.stats()["requests"])


def test_bad_fault_spec(client: EmulatorClient) -> None:
    reply = client.admin("POST", "faults", {"status": 503, "bogus": 1})
    assert reply.status_code == 400 and reply.json()["error"] == "INVALID_FAULT"
    assert client.admin("POST", "faults", {"rate": 2}).status_code == 400


def test_expire_sessions(client: EmulatorClient) -> None:
    assert client.get(V + "/limits").status_code == 200
    assert client.admin("POST", "sessions/expire").json()["expired"] >= 1
    reply = client.get(V + "/limits")
    assert reply.status_code == 401
    assert reply.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    fresh = client.password_login().json()["access_token"]
    assert client.get(V + "/limits", token=fresh).status_code == 200
    stats = client.stats()
    assert stats["invalid_session_responses"] == 1
    assert stats["reauths"] == 1  # the token fixture's grant, then this one


def test_reset_wipes_data_and_keeps_sessions(client: EmulatorClient) -> None:
    created = client.post(V + "/sobjects/Account", json={"Name": "Gone soon"}).json()["id"]
    assert client.admin("POST", "reset").status_code == 200
    assert client.get(f"{V}/sobjects/Account/{created}").status_code == 404
    assert client.stats()["requests_total"] == 1  # stats were reset too; only the GET above
    client.admin("POST", "reset", {"sessions": True})
    assert client.get(V + "/limits").status_code == 401


def test_stats_shape(client: EmulatorClient) -> None:
    client.get(V + "/limits")
    stats = client.stats()
    assert {"requests_total", "requests", "requests_by_prefix", "responses_by_status", "token_grants",
            "token_grants_total", "token_grant_failures", "reauths", "invalid_session_responses",
            "faults_injected", "connections_dropped", "api_usage", "live_sessions"} <= set(stats)
    assert stats["requests_by_prefix"]["GET /services/data"] == 1
    assert stats["requests_by_prefix"]["POST /services/oauth2"] == 1
    assert client.admin("DELETE", "stats").status_code == 204
    assert client.stats()["requests_total"] == 0


def test_stats_report_the_emulator_process_cpu_the_benchmarks_read(client: EmulatorClient) -> None:
    before = client.stats()["process_cpu_s"]
    for n in range(200):  # work the emulator does for a client: its CPU grows
        client.post(V + "/sobjects/Account", json={"Name": f"cpu {n}"})
    after = client.stats()["process_cpu_s"]
    assert isinstance(before, float) and after > before


# -- faults after the request was carried out, raw bodies, session expiry ---------------------------
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
