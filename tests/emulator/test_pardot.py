"""The emulator's Pardot API over loopback HTTPS with plain requests: wire shapes, the Business
Unit check, v5 and v4, Import/Export jobs moving over time, the quota knob."""

from __future__ import annotations

import json
import time

import pytest

from sf_emulator_client import EmulatorClient

BU = "0Uv000000000001AAA"


@pytest.fixture
def pd(salesforce_emulator_reset) -> EmulatorClient:
    client = EmulatorClient(salesforce_emulator_reset)
    yield client
    client.post("/__emulator__/pardot", json={"daily_quota": None, "job_seconds": 0.3}, auth=False)


def _call(pd: EmulatorClient, method: str, path: str, bu: str | None = BU, **kwargs):
    headers = {"Pardot-Business-Unit-Id": bu} if bu is not None else {}
    return pd.request(method, path, headers=headers, **kwargs)


def _wait(pd: EmulatorClient, path: str, timeout: float = 10.0) -> dict:
    deadline, states = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        body = _call(pd, "GET", path).json()
        states.append(body["state"])
        if body["state"] in ("Complete", "Failed"):
            body["seen"] = states
            return body
        time.sleep(0.05)
    raise AssertionError(f"{path} stuck: {states}")


def test_business_unit_header_missing_or_wrong(pd) -> None:
    # Pardot's own codes, not a 401: the token is valid, nothing for a client to re-authenticate.
    missing = _call(pd, "GET", "/api/v5/objects/prospects?fields=id", bu=None)
    assert missing.status_code == 400 and missing.json() == {
        "code": 181, "message": "A required header is missing: Pardot-Business-Unit-Id header not found on request."}
    wrong = _call(pd, "GET", "/api/v5/objects/prospects?fields=id", bu="0Uv000000000999AAA")
    assert wrong.status_code == 403 and wrong.json() == {
        "code": 201, "message": "Business Unit specified in Pardot-Business-Unit-Id header not found or inactive."}
    v4 = _call(pd, "GET", "/api/prospect/version/4/do/query", bu=None)
    assert v4.json()["@attributes"] == {"stat": "fail", "version": 1.0, "err_code": 181}
    v4_wrong = _call(pd, "GET", "/api/prospect/version/4/do/query", bu="0Uv000000000999AAA")
    assert v4_wrong.status_code == 403 and v4_wrong.json()["@attributes"]["err_code"] == 201


def test_bad_token_is_pardot_184(pd) -> None:
    reply = _call(pd, "GET", "/api/v5/objects/prospects?fields=id", token="00Dbogus!token")
    assert reply.status_code == 401 and reply.json()["code"] == 184


def test_v5_crud_fields_and_paging(pd) -> None:
    created = _call(pd, "POST", "/api/v5/objects/prospects?fields=id,email,createdAt",
                    json={"email": "ada@example.com", "firstName": "Ada"})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "email", "createdAt"} and body["email"] == "ada@example.com"
    pid = body["id"]
    for n in range(4):
        _call(pd, "POST", "/api/v5/objects/prospects", json={"email": f"p{n}@example.com"})
    page = _call(pd, "GET", "/api/v5/objects/prospects?fields=id,email&limit=2").json()
    assert [r["id"] for r in page["values"]] == [1, 2] and page["nextPageToken"]
    assert page["nextPageUrl"].endswith(f"nextPageToken={page['nextPageToken']}")
    second = _call(pd, "GET", f"/api/v5/objects/prospects?nextPageToken={page['nextPageToken']}").json()
    assert [r["id"] for r in second["values"]] == [3, 4] and set(second["values"][0]) == {"id", "email"}
    filtered = _call(pd, "GET", "/api/v5/objects/prospects?fields=id&email=p2@example.com").json()
    assert filtered["values"] == [{"id": 4}] and filtered["nextPageToken"] is None
    updated = _call(pd, "PATCH", f"/api/v5/objects/prospects/{pid}?fields=firstName", json={"firstName": "Grace"})
    assert updated.json() == {"firstName": "Grace"}
    assert _call(pd, "DELETE", f"/api/v5/objects/prospects/{pid}").status_code == 204
    gone = _call(pd, "GET", f"/api/v5/objects/prospects/{pid}?fields=id")
    assert gone.status_code == 404 and gone.json()["code"] == 404


@pytest.mark.parametrize("method,path,body,code", [
    ("GET", "/api/v5/objects/prospects?fields=id,nope", None, 224),
    ("GET", "/api/v5/objects/prospects", None, 13),
    ("POST", "/api/v5/objects/prospects", {"email": "not-an-email"}, 4),
    ("POST", "/api/v5/objects/prospects", {"firstName": "No email"}, 153),
    ("POST", "/api/v5/objects/prospects", {"email": "a@b.co", "bogus": 1}, 180),
    ("POST", "/api/v5/objects/users", {"email": "a@b.co"}, 405),
    ("GET", "/api/v5/objects/prospects?fields=id&limit=5000", None, 23),
    ("GET", "/api/v5/objects/prospects?nextPageToken=garbage", None, 211),
])
def test_v5_bad_input(pd, method, path, body, code) -> None:
    reply = _call(pd, method, path, json=body)
    assert reply.status_code in (400, 405) and reply.json()["code"] == code


def test_upsert_latest_by_email(pd) -> None:
    path = "/api/v5/objects/prospects/do/upsertLatestByEmail"
    first = _call(pd, "POST", path, json={"matchEmail": "u@example.com", "prospect": {"firstName": "A"},
                                          "fields": ["id", "firstName"]}).json()
    second = _call(pd, "POST", path, json={"matchEmail": "U@example.com", "prospect": {"firstName": "B"},
                                           "fields": ["id", "firstName"]}).json()
    assert first == {"id": 1, "firstName": "A"} and second == {"id": 1, "firstName": "B"}


def test_v4_batch_and_query(pd) -> None:
    prospects = {"prospects": [{"email": "v4a@example.com"}, {"email": "broken"}, {"email": "v4b@example.com"}]}
    reply = _call(pd, "POST", "/api/prospect/version/4/do/batchCreate",
                  data={"prospects": json.dumps(prospects), "format": "json"}).json()
    assert reply["@attributes"]["stat"] == "ok" and list(reply["errors"]) == ["1"]
    update = _call(pd, "POST", "/api/prospect/version/4/do/batchUpdate",
                   data={"prospects": json.dumps({"prospects": [{"email": "v4b@example.com", "company": "Acme"}]})})
    assert "errors" not in update.json()
    query = _call(pd, "GET", "/api/prospect/version/4/do/query?format=json").json()
    assert query["result"]["total_results"] == 2
    assert [p.get("company") for p in query["result"]["prospect"]] == [None, "Acme"]
    bad = _call(pd, "GET", "/api/prospect/version/4/do/explode")
    assert bad.json()["@attributes"]["err_code"] == 2  # "Invalid action" in the registry


def test_import_moves_through_states_and_reports_bad_rows(pd) -> None:
    created = _call(pd, "POST", "/api/v5/imports",
                    files={"input": (None, json.dumps({"operation": "Upsert", "object": "Prospect"}))})
    assert created.status_code == 201 and created.json()["state"] == "Open"
    import_id = created.json()["id"]
    csv_text = "email,firstName\ngood1@example.com,A\nnot-an-email,B\ngood2@example.com,C\n"
    batch = _call(pd, "POST", f"/api/v5/imports/{import_id}/batches", files={"importFile": ("b.csv", csv_text)})
    assert batch.status_code == 204
    assert _call(pd, "PATCH", f"/api/v5/imports/{import_id}", json={"state": "Ready"}).json()["state"] == "Waiting"
    done = _wait(pd, f"/api/v5/imports/{import_id}")
    assert "Processing" in done["seen"] or "Waiting" in done["seen"]
    assert (done["createdCount"], done["errorCount"]) == (2, 1) and done["errorsRef"].endswith("/errors")
    errors = _call(pd, "GET", f"/api/v5/imports/{import_id}/errors").text.splitlines()
    assert errors[0] == "email,firstName,error" and errors[1].startswith("not-an-email,B,Invalid prospect email")
    late = _call(pd, "POST", f"/api/v5/imports/{import_id}/batches", files={"importFile": ("b.csv", csv_text)})
    assert late.status_code == 400


def test_export_visitor_activities(pd) -> None:
    seeded = pd.post("/__emulator__/pardot/seed", auth=False, json={
        "object": "visitor-activities", "records": [{"prospectId": n, "type": 4, "details": f"page {n}"}
                                                    for n in range(3)]})
    assert seeded.json() == {"ids": [1, 2, 3]}
    bad = _call(pd, "POST", "/api/v5/exports", json={"procedure": {"name": "nope"}, "fields": ["id"]})
    assert bad.status_code == 400
    created = _call(pd, "POST", "/api/v5/exports", json={
        "fields": ["id", "prospectId", "details"], "procedure": {"name": "visitorActivity_byDateAndType",
                                                                 "arguments": {}}})
    assert created.status_code == 201 and created.json()["resultRefs"] is None
    done = _wait(pd, f"/api/v5/exports/{created.json()['id']}")
    (ref,) = done["resultRefs"]
    text = pd.get(ref.removeprefix(pd.url), headers={"Pardot-Business-Unit-Id": BU}).text
    assert text.splitlines() == ["id,prospectId,details", "1,0,page 0", "2,1,page 1", "3,2,page 2"]


def test_quota_knob(pd) -> None:
    assert pd.post("/__emulator__/pardot", json={"daily_quota": 1}, auth=False).json()["daily_quota"] == 1
    assert _call(pd, "GET", "/api/v5/objects/prospects?fields=id").status_code == 200
    over = _call(pd, "GET", "/api/v5/objects/prospects?fields=id")
    assert over.status_code == 429 and over.json() == {"code": 122, "message": "Daily API rate limit met."}
