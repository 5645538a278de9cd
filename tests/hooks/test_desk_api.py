"""DeskHook's API v2 calls against the emulator: resources, lazy paging, ETags, rate limits, errors."""

from __future__ import annotations

import base64
import time
from itertools import islice

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceNotFoundError,
    SalesforceOutcomeUnknownError,
    SalesforceRequestLimitError,
    SalesforceSessionExpiredError,
)
from airflow_provider_salesforce_suite.hooks.desk import DeskAuthError, entry_id, link
from tests.hooks.desk_support import OAUTH1, desk_conn, desk_hook, desk_knob  # noqa: F401 - fixtures


def desk_requests(emulator_admin, method: str = "GET", status: str | None = None) -> int:
    stats = emulator_admin.stats()
    if status is not None:
        return stats["responses_by_status"].get(status, 0)
    return stats["requests_by_prefix"].get(f"{method} /api/v2", 0)


def test_case_lifecycle(desk_hook) -> None:
    hook = desk_hook()
    customer = hook.create("customers", {"first_name": "Ada", "emails": [{"type": "work", "value": "ada@x.org"}]})
    case = hook.create_case("Printer on fire", message={"direction": "in", "body": "Help"},
                            customer_id=customer["id"], priority=9, labels=["Urgent"])
    assert case["_links"]["customer"]["href"] == f"/api/v2/customers/{customer['id']}"
    assert hook.update("cases", case["id"], {"status": "open"})["status"] == "open"
    assert hook.show("cases", case["id"])["priority"] == 9
    reply = hook.reply_to_case(case["id"], "On it", to="ada@x.org")
    note = hook.add_case_note(case["id"], "Customer called")
    forwarded = hook.forward_case(case["id"], "boss@x.org", note_text="FYI")
    attachment = hook.create_related("cases", case["id"], "attachments", {
        "file_name": "log.txt", "content_type": "text/plain", "content": base64.b64encode(b"abc").decode()})
    assert [r["id"] for r in hook.list_related("cases", case["id"], "replies")] == [reply["id"], forwarded["id"]]
    assert [n["body"] for n in hook.list_related("cases", case["id"], "notes")] == ["Customer called"]
    assert entry_id(note) == note["id"] and attachment["size"] == 3
    assert [c["id"] for c in hook.list_related("customers", customer["id"], "cases")] == [case["id"]]
    assert [c["id"] for c in hook.search("cases", {"status": "open", "email": "ada@x.org"})] == [case["id"]]


def test_every_collection(desk_hook) -> None:
    hook = desk_hook()
    company = hook.create("companies", {"name": "Initech", "domains": ["initech.com"]})
    assert hook.update("companies", company["id"], {"name": "Initech"})["name"] == "Initech"  # its own name is fine
    customer = hook.create("customers", {"first_name": "Peter", "_links": {"company": link("companies", company["id"])}})
    assert [c["id"] for c in hook.search("customers", {"first_name": "pete"})] == [customer["id"]]
    assert [c["id"] for c in hook.list_related("companies", company["id"], "customers")] == [customer["id"]]
    hook.create_case("TPS", customer_id=customer["id"])
    assert len(list(hook.list_related("companies", company["id"], "cases"))) == 1
    topic = hook.create("topics", {"name": "FAQ"})
    article = hook.create("articles", {"subject": "Reset a password", "_links": {"topic": link("topics", topic["id"])}})
    hook.create_related("articles", article["id"], "attachments",
                        {"file_name": "a.png", "content": base64.b64encode(b"png").decode()})
    assert [a["file_name"] for a in hook.list_related("articles", article["id"], "attachments")] == ["a.png"]
    assert [a["id"] for a in hook.search("articles", {"text": "password"})] == [article["id"]]
    assert hook.update("articles", article["id"], {"in_support_center": True})["in_support_center"] is True
    assert [t["name"] for t in hook.list("topics")] == ["FAQ"] and hook.show("topics", topic["id"])["name"] == "FAQ"
    assert [a["id"] for a in hook.list_related("topics", topic["id"], "articles")] == [article["id"]]
    label = hook.create("labels", {"name": "VIP", "color": "blue"})
    assert {entry["name"] for entry in hook.list("labels")} == {"Urgent", "VIP"} and label["color"] == "blue"
    assert [g["name"] for g in hook.list("groups")] == ["Support"]
    users = list(hook.list("users"))
    assert hook.show("users", users[0]["id"])["email"] == "admin@emulator.local"
    filters = {f["name"]: f["id"] for f in hook.list("filters")}
    assert len(list(hook.list_related("filters", filters["New Cases"], "cases"))) == 1
    assert hook.test_connection() == (True, f"Connected to Desk at {hook.config.site_url} as admin@emulator.local")


def test_paging_is_lazy_and_follows_next_links(desk_hook, emulator_admin) -> None:
    hook = desk_hook()
    for n in range(7):
        hook.create_case(f"case {n}")
    before = desk_requests(emulator_admin)
    pages = hook.iter_pages("cases", per_page=3)
    assert desk_requests(emulator_admin) == before  # nothing fetched until asked
    assert [c["subject"] for c in next(pages)] == ["case 0", "case 1", "case 2"]
    assert desk_requests(emulator_admin) == before + 1
    assert [len(p) for p in pages] == [3, 1]
    assert desk_requests(emulator_admin) == before + 3
    assert [c["subject"] for c in islice(hook.list("cases", per_page=2), 3)] == ["case 0", "case 1", "case 2"]
    assert desk_requests(emulator_admin) == before + 5  # two pages for three entries
    with pytest.raises(ValueError, match="per_page"):
        next(hook.iter_pages("cases", per_page=101))


def test_etag_reuses_the_cached_page_on_304(desk_hook, emulator_admin) -> None:
    hook = desk_hook()
    hook.create_case("cached")
    first = hook.get_json("cases", {"per_page": 10})
    assert hook.get_json("cases", {"per_page": 10}) == first
    assert desk_requests(emulator_admin, status="304") == 1
    hook.create_case("new one")
    assert hook.get_json("cases", {"per_page": 10})["total_entries"] == 2  # changed: a fresh 200
    assert desk_requests(emulator_admin, status="304") == 1


def test_oauth1_connection(desk_hook) -> None:
    hook = desk_hook(extra=OAUTH1)
    assert hook.create_case("signed")["subject"] == "signed"
    assert [c["subject"] for c in hook.search("cases", {"q": "sign ed", "status": "new"})] == []
    assert [c["subject"] for c in hook.search("cases", {"q": "signed"})] == ["signed"]


WRONG_PASSWORD = "Wr0ng-Desk-Passw0rd"


# -- bad input --------------------------------------------------------------------------------------------
def test_wrong_credentials(desk_hook, emulator_admin) -> None:
    before = desk_requests(emulator_admin, "POST")
    # A distinctive wrong password: the masker redacts it process-wide, and a common word would
    # then vanish from every later test's messages.
    with pytest.raises(DeskAuthError) as err:
        desk_hook(password=WRONG_PASSWORD).create_case("x")
    # An auth error naming the cause, not an expired session; sent once; no secret in it.
    assert isinstance(err.value, SalesforceAuthError) and not isinstance(err.value, SalesforceSessionExpiredError)
    assert err.value.status == 401 and "Unauthorized" in str(err.value) and WRONG_PASSWORD not in str(err.value)
    assert "rejected the credentials of connection 'desk_emu'" in str(err.value)
    assert "POST /api/v2/cases: Unauthorized" in str(err.value) and "check the login" in str(err.value)
    assert desk_requests(emulator_admin, "POST") - before == 1
    with pytest.raises(DeskAuthError, match="OAuth 1.0a") as err:
        list(desk_hook(extra={**OAUTH1, "access_token_secret": "nope"}).list("cases"))
    assert err.value.status == 401 and "nope" not in str(err.value)
    ok, message = desk_hook(password=WRONG_PASSWORD).test_connection()
    assert not ok and "Unauthorized" in message and "DeskAuthError" in message


def test_unknown_ids(desk_hook) -> None:
    hook = desk_hook()
    with pytest.raises(SalesforceNotFoundError, match="Resource Not Found"):
        hook.show("cases", 404)
    with pytest.raises(SalesforceNotFoundError):
        hook.reply_to_case(12345, "hello?")
    with pytest.raises(SalesforceNotFoundError):
        list(hook.list_related("companies", 9, "cases"))
    with pytest.raises(ValueError, match="unknown Desk collection 'tickets'"):
        hook.show("tickets", 1)
    with pytest.raises(ValueError, match="no 'notes'"):
        hook.collection_path("companies", 1, "notes")
    with pytest.raises(ValueError, match="do not support create"):
        hook.create("users", {"name": "x"})
    with pytest.raises(ValueError, match="do not support search"):
        hook.search("companies", {})


def test_invalid_fields(desk_hook) -> None:
    hook = desk_hook()
    with pytest.raises(SalesforceApiError) as err:
        hook.create_case("", status="bogus")
    assert (err.value.status, sorted(err.value.fields)) == (422, ["status", "subject"])
    assert "Validation Failed" in str(err.value) and "subject: blank" in str(err.value)
    with pytest.raises(SalesforceApiError) as err:
        hook.create("customers", {"favourite_colour": "red"})
    assert err.value.fields == ["favourite_colour"]
    with pytest.raises(SalesforceApiError) as err:
        list(hook.search("cases", {"sort_field": "colour"}))
    assert err.value.status == 422 and err.value.fields == ["sort_field"]


def test_rate_limit_mid_listing_waits_then_completes(desk_hook, desk_knob) -> None:
    hook = desk_hook()
    for n in range(6):
        hook.create_case(f"case {n}")
    desk_knob.set(limit=2, window_seconds=1)
    start = time.monotonic()
    subjects = [c["subject"] for c in hook.list("cases", per_page=1)]
    assert subjects == [f"case {n}" for n in range(6)]  # every entry once, in order
    assert desk_knob.get()["throttled"] >= 1 and time.monotonic() - start >= 1


def test_rate_limit_that_outlasts_the_retries_is_an_error(desk_hook, desk_knob) -> None:
    desk_knob.set(throttle_next=50, window_seconds=1)  # each 429 asks for 1 s: the retries run out first
    with pytest.raises(SalesforceRequestLimitError):
        desk_hook(extra={"max_retries": 1, "retry_max_seconds": 3}).show("users", 1)


# -- lost replies: the write was committed, the reply never arrived ----------------------------------
def test_lost_create_and_reply_replies_are_outcome_unknown_and_not_re_sent(desk_hook, emulator_admin) -> None:
    hook = desk_hook()
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/api/v2", method="POST")
    with pytest.raises(SalesforceOutcomeUnknownError) as err:
        hook.create_case("Printer on fire")
    assert "Desk POST /api/v2/cases was sent, but its reply was lost" in str(err.value)
    assert "may have created the entry" in str(err.value)
    assert [c["subject"] for c in hook.list("cases")] == ["Printer on fire"]  # created once
    case_id = entry_id(next(iter(hook.list("cases"))))
    before = desk_requests(emulator_admin, "POST")
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/api/v2", method="POST")
    with pytest.raises(SalesforceOutcomeUnknownError, match=f"Desk POST /api/v2/cases/{case_id}/replies was sent"):
        hook.reply_to_case(case_id, "On our way")
    assert desk_requests(emulator_admin, "POST") - before == 1
    assert [r["body"] for r in hook.list_related("cases", case_id, "replies")] == ["On our way"]


def test_lost_update_reply_is_replayed(desk_hook, emulator_admin) -> None:
    hook = desk_hook()
    case = hook.create_case("Slow")
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/api/v2", method="PATCH")
    assert hook.update("cases", entry_id(case), {"subject": "Fast"})["subject"] == "Fast"
    assert [c["subject"] for c in hook.list("cases")] == ["Fast"]
