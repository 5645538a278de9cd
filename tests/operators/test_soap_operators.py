"""SOAP operators against the emulator, through ``operator.execute(context)``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook
from airflow_provider_salesforce_suite.io import iter_records
from airflow_provider_salesforce_suite.operators.soap import (
    SalesforceConvertLeadsOperator,
    SalesforceEmptyRecycleBinOperator,
    SalesforceMergeRecordsOperator,
    SalesforceSendEmailOperator,
    SalesforceSoapOperator,
    SalesforceSoapQueryOperator,
    SalesforceSoapResultError,
    SalesforceUndeleteOperator,
)

TRICKY = "O'Brien & <Søn> 東京"


@pytest.fixture
def conn(sf_conn) -> str:
    return sf_conn("sf_soap_ops")


@pytest.fixture
def hook(conn) -> SalesforceSoapHook:
    return SalesforceSoapHook(conn)


def test_no_io_in_init_and_templated_fields(monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT", raising=False)
    op = SalesforceSoapOperator(task_id="t", operation="describeGlobal", salesforce_conn_id="missing")
    assert "operation" in op.template_fields and "arguments" in op.template_fields
    assert "soql" in SalesforceSoapQueryOperator.template_fields
    assert "lead_converts" in SalesforceConvertLeadsOperator.template_fields


def test_generic_operator_returns_json_safe_results(conn, hook) -> None:
    hook.create([{"type": "Account", "Name": TRICKY}])
    op = SalesforceSoapOperator(task_id="q", operation="query", salesforce_conn_id=conn,
                                arguments={"soql": "SELECT Id, Name, CreatedDate FROM Account"})
    rows = op.execute({})
    json.dumps(rows)
    assert rows[0]["Name"] == TRICKY and isinstance(rows[0]["CreatedDate"], str)
    stamp = SalesforceSoapOperator(task_id="t", operation="getServerTimestamp", salesforce_conn_id=conn).execute({})
    assert isinstance(stamp, str) and stamp.startswith("20")
    info = SalesforceSoapOperator(task_id="u", operation="getUserInfo", salesforce_conn_id=conn).execute({})
    assert info["userName"] and json.dumps(info)


def test_query_operator_writes_a_file(conn, hook, tmp_path: Path) -> None:
    [parent] = hook.create([{"type": "Account", "Name": TRICKY}])
    hook.create([{"type": "Contact", "LastName": f"L{i:03d}", "AccountId": parent["id"]} for i in range(450)])
    out = tmp_path / "contacts.jsonl"
    op = SalesforceSoapQueryOperator(task_id="q", salesforce_conn_id=conn, output_uri=str(out), batch_size=200,
                                     soql="SELECT Id, LastName, Account.Name, CreatedDate FROM Contact ORDER BY LastName")
    summary = op.execute({})
    assert summary["rows"] == 450 and summary["columns"][:4] == ["Id", "LastName", "Account.Name", "CreatedDate"]
    rows = list(iter_records(out))
    assert rows[0]["LastName"] == "L000" and rows[0]["Account.Name"] == TRICKY and "type" not in rows[0]


def test_convert_leads_operator(conn, hook) -> None:
    leads = hook.create([{"type": "Lead", "LastName": f"L{i}", "Company": f"Co {i}"} for i in range(3)])
    op = SalesforceConvertLeadsOperator(task_id="c", salesforce_conn_id=conn, converted_status="Closed - Converted",
                                        do_not_create_opportunity=True,
                                        lead_converts=[{"leadId": r["id"]} for r in leads])
    results = op.execute({})
    assert [r["leadId"] for r in results] == [r["id"] for r in leads]
    assert all(r["success"] and r["accountId"] for r in results)


def test_convert_leads_failure_fails_the_task(conn) -> None:
    op = SalesforceConvertLeadsOperator(task_id="c", salesforce_conn_id=conn, converted_status="Closed - Converted",
                                        lead_converts=[{"leadId": "00Q000000000009AAA"}])
    with pytest.raises(SalesforceSoapResultError) as err:
        op.execute({})
    assert len(err.value.results) == 1 and not err.value.results[0]["success"]
    lenient = SalesforceConvertLeadsOperator(task_id="c", salesforce_conn_id=conn, fail_on_errors=False,
                                             converted_status="Closed - Converted",
                                             lead_converts=[{"leadId": "00Q000000000009AAA"}])
    assert lenient.execute({})[0]["errors"]


def test_merge_operator(conn, hook) -> None:
    a, b, c = hook.create([{"type": "Account", "Name": n} for n in ("Keep", "Dup 1", "Dup 2")])
    op = SalesforceMergeRecordsOperator(task_id="m", salesforce_conn_id=conn, merge_requests=[
        {"masterRecord": {"type": "Account", "Id": a["id"]}, "recordToMergeIds": [b["id"], c["id"]]}])
    [result] = op.execute({})
    assert result["success"] and sorted(result["mergedRecordIds"]) == sorted([b["id"], c["id"]])
    assert [r["Name"] for r in hook.query("SELECT Name FROM Account")] == ["Keep"]


def test_undelete_and_empty_recycle_bin_operators(conn, hook) -> None:
    ids = [r["id"] for r in hook.create([{"type": "Account", "Name": f"R{i}"} for i in range(4)])]
    hook.delete(ids)
    restored = SalesforceUndeleteOperator(task_id="u", salesforce_conn_id=conn, ids=ids[:2]).execute({})
    assert [r["success"] for r in restored] == [True, True]
    purged = SalesforceEmptyRecycleBinOperator(task_id="e", salesforce_conn_id=conn, ids=ids[2:]).execute({})
    assert [r["id"] for r in purged] == ids[2:]
    assert sorted(r["Name"] for r in hook.query("SELECT Name FROM Account")) == ["R0", "R1"]
    with pytest.raises(SalesforceSoapResultError):
        SalesforceUndeleteOperator(task_id="u", salesforce_conn_id=conn, ids=ids[2:]).execute({})


def test_send_email_operator(conn) -> None:
    op = SalesforceSendEmailOperator(task_id="m", salesforce_conn_id=conn, messages=[
        {"toAddresses": ["a@example.com"], "subject": "Hi & <bye>", "plainTextBody": "Zoë"}])
    assert op.execute({}) == [{"errors": [], "success": True}]


@pytest.mark.parametrize("op", [
    SalesforceUndeleteOperator(task_id="x", ids="{{ ti.xcom_pull('a') }}"),
    SalesforceMergeRecordsOperator(task_id="y", merge_requests="not a list"),
    SalesforceConvertLeadsOperator(task_id="z", lead_converts={"leadId": "x"}),
])
def test_unrendered_list_arguments_are_refused(op) -> None:
    with pytest.raises(TypeError, match="must be a list"):
        op.execute({})
