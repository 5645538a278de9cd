"""Desk operators against the emulator: create / reply to a case, a generic call, collection exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError, SalesforceAuthError, SalesforceNotFoundError
from airflow_provider_salesforce_suite.hooks.desk import DeskHook
from airflow_provider_salesforce_suite.operators.desk import (
    SalesforceDeskApiOperator,
    SalesforceDeskCaseReplyOperator,
    SalesforceDeskCreateCaseOperator,
    SalesforceDeskToFileOperator,
    flat_entry,
)
from tests.hooks.desk_support import desk_conn, desk_knob  # noqa: F401 - fixtures


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_create_case_and_reply(desk_conn) -> None:
    conn = desk_conn()
    customer = DeskHook(conn).create("customers", {"first_name": "Ada"})
    case = SalesforceDeskCreateCaseOperator(
        task_id="case", desk_conn_id=conn, subject="Broken widget", customer_id=customer["id"],
        message={"direction": "in", "body": "It broke"}, fields={"priority": 7}).execute({})
    assert (case["subject"], case["priority"], case["blurb"]) == ("Broken widget", 7, "It broke")
    reply = SalesforceDeskCaseReplyOperator(task_id="reply", desk_conn_id=conn, case_id=case["id"],
                                            body="Replacement shipped", fields={"status": "draft"}).execute({})
    assert (reply["body"], reply["status"]) == ("Replacement shipped", "draft")
    assert [r["id"] for r in DeskHook(conn).list_related("cases", case["id"], "replies")] == [reply["id"]]


def test_operator_errors(desk_conn) -> None:
    conn = desk_conn()
    with pytest.raises(SalesforceApiError) as err:
        SalesforceDeskCreateCaseOperator(task_id="c", desk_conn_id=conn, subject=" ").execute({})
    assert err.value.status == 422 and err.value.fields == ["subject"]
    with pytest.raises(SalesforceNotFoundError):
        SalesforceDeskCaseReplyOperator(task_id="r", desk_conn_id=conn, case_id=77, body="hi").execute({})
    with pytest.raises(SalesforceAuthError) as err:  # wrong credentials: an auth error, not an API or session one
        SalesforceDeskCreateCaseOperator(task_id="c", desk_conn_id=desk_conn("bad", password="nope"),
                                         subject="x").execute({})
    assert err.value.status == 401 and "nope" not in str(err.value)


def test_generic_call(desk_conn) -> None:
    conn = desk_conn()
    label = SalesforceDeskApiOperator(task_id="post", desk_conn_id=conn, method="post", path="labels",
                                      json={"name": "VIP"}).execute({})
    got = SalesforceDeskApiOperator(task_id="get", desk_conn_id=conn, path=f"/api/v2/labels/{label['id']}").execute({})
    assert got["name"] == "VIP"
    page = SalesforceDeskApiOperator(task_id="list", desk_conn_id=conn, path="labels",
                                     query={"per_page": 1}).execute({})
    assert page["total_entries"] == 2 and page["_links"]["next"]["href"].startswith("/api/v2/labels?page=2")
    with pytest.raises(SalesforceNotFoundError):
        SalesforceDeskApiOperator(task_id="x", desk_conn_id=conn, path="labels/999").execute({})


def test_list_collection_to_file(desk_conn, tmp_path: Path) -> None:
    conn = desk_conn()
    hook = DeskHook(conn)
    customer = hook.create("customers", {"first_name": "Ada"})
    for n in range(5):
        hook.create_case(f"case {n}", customer_id=customer["id"] if n % 2 else None,
                         message={"direction": "in", "body": f"body {n}"})
    out = tmp_path / "cases.jsonl"
    result = SalesforceDeskToFileOperator(task_id="x", desk_conn_id=conn, collection="cases",
                                          output_uri=str(out), per_page=2).execute({})
    assert result == {"uri": str(out), "rows": 5}
    rows = jsonl(out)
    assert [r["subject"] for r in rows] == [f"case {n}" for n in range(5)]
    assert [r.get("customer_id") for r in rows] == [None, customer["id"], None, customer["id"], None]
    assert all("_links" not in r for r in rows) and rows[0]["message"]["body"] == "body 0"


def test_search_to_csv(desk_conn, tmp_path: Path) -> None:
    conn = desk_conn()
    hook = DeskHook(conn)
    hook.create_case("open one", status="open")
    hook.create_case("new one")
    out = tmp_path / "sub" / "new.csv"
    result = SalesforceDeskToFileOperator(task_id="x", desk_conn_id=conn, collection="cases",
                                          search={"status": "new"}, output_uri=f"file://{out}").execute({})
    assert result["rows"] == 1
    assert [row["subject"] for row in csv.DictReader(out.open())] == ["new one"]


def test_rate_limit_mid_export_waits_and_nothing_is_duplicated(desk_conn, desk_knob, tmp_path: Path) -> None:
    conn = desk_conn()
    hook = DeskHook(conn)
    for n in range(8):
        hook.create_case(f"case {n}")
    desk_knob.set(limit=3, window_seconds=1)
    out = tmp_path / "cases.jsonl"
    result = SalesforceDeskToFileOperator(task_id="x", desk_conn_id=conn, collection="cases", output_uri=str(out),
                                          per_page=2).execute({})
    ids = [r["id"] for r in jsonl(out)]
    assert result["rows"] == 8 and len(ids) == len(set(ids)) == 8 and ids == sorted(ids)
    assert desk_knob.get()["throttled"] >= 1


def test_export_errors(desk_conn, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="collection must be one of"):
        SalesforceDeskToFileOperator(task_id="x", collection="tickets", output_uri="x.csv")
    with pytest.raises(ValueError, match="can search"):
        SalesforceDeskToFileOperator(task_id="x", collection="users", search={"q": "a"}, output_uri="x.csv")
    with pytest.raises(ValueError, match="per_page"):
        SalesforceDeskToFileOperator(task_id="x", collection="cases", per_page=0, output_uri="x.csv")
    out = tmp_path / "bad.jsonl"
    with pytest.raises(SalesforceApiError) as err:
        SalesforceDeskToFileOperator(task_id="x", desk_conn_id=desk_conn(), collection="cases",
                                     search={"status": "bogus"}, output_uri=str(out)).execute({})
    assert err.value.status == 422 and not out.exists()


def test_flat_entry_keeps_fields_and_linked_ids() -> None:
    entry = {"id": 3, "subject": "s", "_links": {"self": {"href": "/api/v2/cases/3"},
                                                  "customer": {"href": "/api/v2/customers/9"}, "assigned_user": None,
                                                  "notes": {"href": "/api/v2/cases/3/notes"}},
             "_embedded": {"x": 1}}
    assert flat_entry(entry) == {"id": 3, "subject": "s", "customer_id": 9}
