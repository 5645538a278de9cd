"""The emulator's Desk API v2 over HTTPS: auth, HAL shapes, paging, ETags, rate limits, errors."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
import requests
from requests_oauthlib import OAuth1

from airflow_provider_salesforce_suite.emulator.config import DEFAULT_DESK_OAUTH, EmulatorConfig
from tests.hooks.desk_support import desk_knob  # noqa: F401 - fixture

ADMIN = ("admin@emulator.local", "emulator")


class Desk:
    """Raw HTTP to the emulator's ``/api/v2``."""

    def __init__(self, server: Any) -> None:
        self.base = server.url + "/api/v2/"
        self.verify = server.ca_bundle

    def call(self, method: str, path: str, auth: Any = ADMIN, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.base + path, auth=auth, verify=self.verify, timeout=10, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture
def desk(salesforce_emulator_reset) -> Desk:
    return Desk(salesforce_emulator_reset)


def oauth1(secret: str = DEFAULT_DESK_OAUTH.access_token_secret, token: str = DEFAULT_DESK_OAUTH.access_token,
           **kwargs: Any) -> OAuth1:
    return OAuth1(DEFAULT_DESK_OAUTH.consumer_key, client_secret=DEFAULT_DESK_OAUTH.consumer_secret,
                  resource_owner_key=token, resource_owner_secret=secret, **kwargs)


# -- auth -----------------------------------------------------------------------------------------------
def test_basic_auth_as_the_well_known_admin(desk) -> None:
    me = desk.ok("GET", "users/me")
    assert me["email"] == "admin@emulator.local" and me["level"] == "siteadmin"
    assert me["_links"]["self"] == {"href": f"/api/v2/users/{me['id']}", "class": "user"}


@pytest.mark.parametrize("auth", [("admin@emulator.local", "wrong"), ("nobody@example.com", "emulator"), None])
def test_wrong_or_missing_basic_credentials_are_401(desk, auth) -> None:
    response = desk.call("GET", "cases", auth=auth)
    assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


def test_oauth1_signature_is_verified(desk) -> None:
    assert desk.ok("GET", "cases/search", auth=oauth1(), params={"status": "new", "q": "x y"})["total_entries"] == 0
    assert desk.ok("POST", "cases", 201, auth=oauth1(), json={"subject": "signed"})["subject"] == "signed"
    for bad in (oauth1(secret="wrong"), oauth1(token="unknown-token"), oauth1(timestamp="1000000000")):
        response = desk.call("GET", "cases", auth=bad)
        assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"})


def test_oauth1_pairs_come_from_the_config() -> None:
    config = EmulatorConfig.from_dict({"desk_oauth_tokens": [
        {"consumer_key": "ck", "consumer_secret": "cs", "access_token": "at", "access_token_secret": "ats",
         "user": "agent@example.com"}]})
    assert config.desk_oauth_token("ck", "at").user == "agent@example.com"
    assert config.desk_oauth_token("emulator", "emulator-token") == DEFAULT_DESK_OAUTH
    assert config.desk_oauth_token("ck", "emulator-token") is None


# -- shapes and errors ------------------------------------------------------------------------------------
def test_case_create_show_update_in_hal(desk) -> None:
    customer = desk.ok("POST", "customers", 201, json={"first_name": "Ada", "emails": [
        {"type": "work", "value": "ada@example.com"}]})
    case = desk.ok("POST", "cases", 201, json={
        "subject": "Printer on fire", "priority": 8, "labels": ["Urgent"],
        "message": {"direction": "in", "body": "It burns", "from": "ada@example.com"},
        "_links": {"customer": {"href": f"/api/v2/customers/{customer['id']}", "class": "customer"}}})
    assert (case["type"], case["status"], case["priority"], case["blurb"]) == ("email", "new", 8, "It burns")
    assert case["_links"]["customer"] == {"href": f"/api/v2/customers/{customer['id']}", "class": "customer"}
    assert case["_links"]["notes"]["href"] == f"/api/v2/cases/{case['id']}/notes"
    assert case["created_at"].endswith("Z")
    updated = desk.ok("PATCH", f"cases/{case['id']}", json={"status": "open"})
    assert updated["status"] == "open" and updated["subject"] == "Printer on fire"
    assert desk.ok("GET", f"cases/{case['id']}")["status"] == "open"


@pytest.mark.parametrize("body, errors", [
    ({"subject": ""}, {"subject": ["blank"]}),
    ({}, {"subject": ["blank"]}),
    ({"subject": "x", "status": "bogus", "priority": 11}, {"status": ["inclusion"], "priority": ["invalid"]}),
    ({"subject": "x", "colour": "red"}, {"colour": ["invalid"]}),
    ({"subject": "x", "_links": {"customer": {"href": "/api/v2/customers/999"}}}, {"customer": ["invalid"]}),
])
def test_invalid_case_fields_are_422(desk, body, errors) -> None:
    response = desk.call("POST", "cases", json=body)
    assert response.status_code == 422
    assert response.json() == {"message": "Validation Failed", "errors": errors}


def test_unique_names_and_customer_emails(desk) -> None:
    desk.ok("POST", "companies", 201, json={"name": "Acme", "domains": ["acme.com"]})
    response = desk.call("POST", "companies", json={"name": "ACME"})
    assert response.json() == {"message": "Validation Failed", "errors": {"name": ["taken"]}}
    response = desk.call("POST", "customers", json={"emails": [{"type": "work", "value": "not-an-email"}]})
    assert response.json()["errors"] == {"emails": {"value": ["invalid"]}}


@pytest.mark.parametrize("path", ["cases/999", "companies/5", "cases/999/notes", "nope", "cases/1/bogus"])
def test_unknown_ids_and_paths_are_404(desk, path) -> None:
    response = desk.call("GET", path)
    assert (response.status_code, response.json()) == (404, {"message": "Resource Not Found"})


def test_read_only_collections_refuse_writes(desk) -> None:
    response = desk.call("POST", "users", json={"name": "x"})
    assert response.status_code == 405 and "message" in response.json()


# -- paging and ETags ---------------------------------------------------------------------------------------
def test_paging_links(desk) -> None:
    for n in range(5):
        desk.ok("POST", "cases", 201, json={"subject": f"case {n}"})
    first = desk.ok("GET", "cases", params={"per_page": 2})
    links = first["_links"]
    assert (first["total_entries"], first["page"]) == (5, 1)
    assert [e["subject"] for e in first["_embedded"]["entries"]] == ["case 0", "case 1"]
    assert links["self"]["href"] == "/api/v2/cases?page=1&per_page=2" and links["previous"] is None
    assert links["next"] == {"href": "/api/v2/cases?page=2&per_page=2", "class": "page"}
    assert links["last"]["href"] == "/api/v2/cases?page=3&per_page=2"
    last = desk.ok("GET", links["last"]["href"].removeprefix("/api/v2/"))
    assert last["_links"]["next"] is None and last["_links"]["previous"]["href"].startswith("/api/v2/cases?page=2")
    assert [e["subject"] for e in last["_embedded"]["entries"]] == ["case 4"]
    assert len(desk.ok("GET", "cases", params={"per_page": 500})["_embedded"]["entries"]) == 5  # capped at 100
    response = desk.call("GET", "cases", params={"page": "zero"})
    assert response.json() == {"message": "Validation Failed", "errors": {"page": ["invalid"]}}


def test_etag_and_if_none_match(desk) -> None:
    desk.ok("POST", "cases", 201, json={"subject": "etag"})
    first = desk.call("GET", "cases")
    etag = first.headers["ETag"]
    again = desk.call("GET", "cases", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)
    desk.ok("POST", "cases", 201, json={"subject": "changed"})
    changed = desk.call("GET", "cases", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag and changed.json()["total_entries"] == 2


# -- rate limits -------------------------------------------------------------------------------------------
def test_rate_limit_headers_and_429_on_demand(desk, desk_knob) -> None:
    response = desk.call("GET", "users/me")
    assert response.headers["X-Rate-Limit-Limit"] == "1000"
    assert int(response.headers["X-Rate-Limit-Remaining"]) < 1000 and int(response.headers["X-Rate-Limit-Reset"]) >= 1
    desk_knob.set(throttle_next=1)
    throttled = desk.call("GET", "cases")
    assert (throttled.status_code, throttled.json()) == (429, {"message": "Too Many Requests"})
    assert throttled.headers["X-Rate-Limit-Reset"].isdigit()
    assert desk.call("GET", "cases").status_code == 200
    desk_knob.set(limit=2, window_seconds=1)
    statuses = [desk.call("GET", "cases").status_code for _ in range(3)]
    assert statuses == [200, 200, 429] and desk.call("GET", "cases").headers["X-Rate-Limit-Remaining"] == "0"
    time.sleep(1.05)
    assert desk.call("GET", "cases").status_code == 200
    assert desk_knob.get()["throttled"] >= 2


# -- search --------------------------------------------------------------------------------------------------
def test_case_search_filters(desk) -> None:
    company = desk.ok("POST", "companies", 201, json={"name": "Initech"})
    customer = desk.ok("POST", "customers", 201, json={
        "first_name": "Peter", "last_name": "Gibbons", "emails": [{"type": "work", "value": "peter@initech.com"}],
        "_links": {"company": {"href": f"/api/v2/companies/{company['id']}"}}})
    link = {"customer": {"href": f"/api/v2/customers/{customer['id']}"}}
    tps = desk.ok("POST", "cases", 201, json={"subject": "TPS report", "labels": ["Urgent"], "_links": link})
    desk.ok("POST", "cases", 201, json={"subject": "Stapler missing", "status": "open", "type": "phone"})

    def subjects(**params: Any) -> list[str]:
        return [e["subject"] for e in desk.ok("GET", "cases/search", params=params)["_embedded"]["entries"]]

    assert subjects(status="new") == ["TPS report"]
    assert subjects(status="new,open", sort_field="subject", sort_direction="asc") == ["Stapler missing", "TPS report"]
    assert subjects(q="stapler") == ["Stapler missing"]
    assert subjects(labels="Urgent") == subjects(email="peter@initech.com") == subjects(company="Initech") == [
        "TPS report"]
    assert subjects(channels="phone") == ["Stapler missing"]
    assert subjects(since_id=tps["id"]) == ["Stapler missing"]
    assert subjects(since_created_at=int(time.time()) + 3600) == []
    assert len(subjects(max_created_at=int(time.time()) + 3600)) == 2
    for params, errors in (({"status": "bogus"}, {"status": ["inclusion"]}),
                           ({"sort_field": "colour"}, {"sort_field": ["inclusion"]}),
                           ({"since_created_at": "yesterday"}, {"since_created_at": ["invalid"]})):
        assert desk.call("GET", "cases/search", params=params).json() == {"message": "Validation Failed",
                                                                          "errors": errors}
    assert [e["id"] for e in desk.ok("GET", f"companies/{company['id']}/cases")["_embedded"]["entries"]] == [tps["id"]]
    assert desk.ok("GET", f"customers/{customer['id']}/cases")["total_entries"] == 1
    assert desk.ok("GET", f"companies/{company['id']}/customers")["total_entries"] == 1
    people = desk.ok("GET", "customers/search", params={"full_name": "peter gibbons"})["_embedded"]["entries"]
    assert [p["id"] for p in people] == [customer["id"]]


def test_articles_topics_labels_groups_filters(desk) -> None:
    topic = desk.ok("POST", "topics", 201, json={"name": "Printers"})
    article = desk.ok("POST", "articles", 201, json={
        "subject": "Unjam a printer", "body": "Open tray 2", "in_support_center": True,
        "_links": {"topic": {"href": f"/api/v2/topics/{topic['id']}", "class": "topic"}}})
    assert article["_links"]["topic"]["href"] == f"/api/v2/topics/{topic['id']}"
    found = desk.ok("GET", "articles/search", params={"text": "tray", "topic_ids": str(topic["id"])})
    assert [a["id"] for a in found["_embedded"]["entries"]] == [article["id"]]
    assert desk.ok("GET", f"topics/{topic['id']}/articles")["total_entries"] == 1
    assert desk.ok("PATCH", f"articles/{article['id']}", json={"body": "Open tray 3"})["body"] == "Open tray 3"
    assert [g["name"] for g in desk.ok("GET", "groups")["_embedded"]["entries"]] == ["Support"]
    assert "Urgent" in [label["name"] for label in desk.ok("GET", "labels")["_embedded"]["entries"]]
    desk.ok("POST", "cases", 201, json={"subject": "fresh"})
    filters = desk.ok("GET", "filters")["_embedded"]["entries"]
    new_filter = next(f for f in filters if f["name"] == "New Cases")
    assert desk.ok("GET", f"filters/{new_filter['id']}/cases")["total_entries"] == 1


def test_case_notes_replies_forward_attachments(desk) -> None:
    case = desk.ok("POST", "cases", 201, json={"subject": "Need help"})
    path = f"cases/{case['id']}"
    note = desk.ok("POST", f"{path}/notes", 201, json={"body": "Called the customer"})
    assert note["_links"]["self"]["href"] == f"/api/v2/{path}/notes/{note['id']}"
    reply = desk.ok("POST", f"{path}/replies", 201, json={"body": "On it", "to": "ada@example.com"})
    assert (reply["direction"], reply["status"]) == ("out", "sent")
    forwarded = desk.ok("POST", f"{path}/forward", 201, json={"to": "boss@example.com", "note_text": "FYI"})
    assert forwarded["to"] == "boss@example.com" and forwarded["subject"] == "Fwd: Need help"
    assert desk.ok("GET", f"{path}/replies")["total_entries"] == 2
    content = base64.b64encode(b"hello desk").decode()
    attachment = desk.ok("POST", f"{path}/attachments", 201, json={"file_name": "a.txt", "content_type": "text/plain",
                                                                    "content": content})
    assert attachment["size"] == 10 and "content" not in attachment
    assert desk.ok("GET", f"{path}/attachments/{attachment['id']}")["file_name"] == "a.txt"
    for sub, body, errors in (("notes", {"body": ""}, {"body": ["blank"]}),
                              ("attachments", {"file_name": "x", "content": "%%%"}, {"content": ["invalid"]}),
                              ("forward", {"to": "nobody"}, {"to": ["invalid"]})):
        assert desk.call("POST", f"{path}/{sub}", json=body).json() == {"message": "Validation Failed",
                                                                       "errors": errors}


def test_reset_clears_desk_data(desk, salesforce_emulator_reset) -> None:
    desk.ok("POST", "cases", 201, json={"subject": "gone soon"})
    salesforce_emulator_reset.reset()
    assert desk.ok("GET", "cases")["total_entries"] == 0
    assert desk.ok("GET", "users/me")["email"] == "admin@emulator.local"


def test_cli_help_documents_the_desk_credentials() -> None:
    from airflow_provider_salesforce_suite.emulator.cli import build_parser

    text = build_parser().format_help()
    assert "Basic auth       admin@emulator.local / emulator" in text
    assert "token emulator-token / emulator-token-secret" in text and "/__emulator__/desk" in text
