"""REST operators against the emulator, through ``operator.execute(context)``."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceNotFoundError
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from airflow_provider_salesforce_suite.io import iter_records
from airflow_provider_salesforce_suite.operators.rest import (
    SalesforceApexRestOperator,
    SalesforceCompositeOperator,
    SalesforceCreateRecordsOperator,
    SalesforceDeleteRecordsOperator,
    SalesforceDescribeOperator,
    SalesforceGetDeletedOperator,
    SalesforceGetRecordsOperator,
    SalesforceGetUpdatedOperator,
    SalesforceQueryOperator,
    SalesforceRecordsFailedError,
    SalesforceRestCallOperator,
    SalesforceSaveRecordsOperator,
    SalesforceSearchOperator,
    SalesforceUpdateRecordsOperator,
    SalesforceUpsertRecordsOperator,
    SalesforceXComLimitError,
)
from tests.operators.resumable_support import RecordingTaskInstance


@pytest.fixture(autouse=True)
def _own_base_uri(monkeypatch, tmp_path) -> None:
    """Every test its own default failures and journal base (a failed task keeps its journal)."""
    monkeypatch.setenv("AIRFLOW__SALESFORCE_SUITE__FAILED_RECORDS_BASE_URI", f"file://{tmp_path}/base")


@pytest.fixture
def context() -> dict:
    return {"ti": RecordingTaskInstance(), "params": {}}


@pytest.fixture
def conn(sf_conn) -> str:
    return sf_conn("sf_ops")


@pytest.fixture
def hook(conn) -> SalesforceRestHook:
    return SalesforceRestHook(salesforce_conn_id=conn)


def _accounts(hook: SalesforceRestHook) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "attributes"}
            for r in hook.query("SELECT Id, Name, Industry, Rating FROM Account ORDER BY Name")]


def _read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


# -- saving ----------------------------------------------------------------------------------------------------
def test_create_from_records_summary(conn, hook, context) -> None:
    records = [{"Name": f"Acme {i}", "Industry": "Technology"} for i in range(5)]
    op = SalesforceCreateRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account",
                                         records=records, batch_size=2, concurrency=2)
    summary = op.execute(context)
    assert summary["operation"] == "insert" and summary["sobject"] == "Account"
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (5, 5, 0)
    assert summary["failed_records_uri"] is None
    stored = _accounts(hook)
    assert sorted(summary["created_ids"]) == sorted(r["Id"] for r in stored)
    assert [r["Name"] for r in stored] == [f"Acme {i}" for i in range(5)]


def test_failures_go_to_the_file_and_fail_the_task_after_all_records(conn, hook, context, tmp_path) -> None:
    source = tmp_path / "accounts.csv"
    source.write_text("Name,Industry\nGood 1,Energy\n,Energy\nGood 2,Banking\n,Retail\nGood 3,Media\n")
    op = SalesforceCreateRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account",
                                         source=f"file://{source}", batch_size=2)
    with pytest.raises(SalesforceRecordsFailedError, match=r"2 of 5 Account records failed to insert") as raised:
        op.execute(context)
    summary = raised.value.summary
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (5, 3, 2)
    assert context["ti"].pushed["summary"] == summary
    # every good record was saved despite the failures before and after it
    assert [r["Name"] for r in _accounts(hook)] == ["Good 1", "Good 2", "Good 3"]
    failed = tmp_path / "accounts.failed.csv"
    assert summary["failed_records_uri"] == f"file://{failed}"
    rows = _read_csv(failed)
    assert [r["Industry"] for r in rows] == ["Energy", "Retail"]
    assert all(r["sf__Error"].startswith("REQUIRED_FIELD_MISSING: ") and r["sf__Fields"] == "Name" for r in rows)


def test_max_failed_records_tolerates_failures(conn, context, tmp_path) -> None:
    records = [{"Name": "ok"}, {"Industry": "Energy"}]
    op = SalesforceCreateRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account", records=records,
                                         max_failed_records=1, failed_records_base_uri=f"file://{tmp_path}/base")
    summary = op.execute(context)
    assert (summary["succeeded"], summary["failed"]) == (1, 1)
    expected = tmp_path / "base" / "dag_a" / "manual__2026-01-01T00_00_00_00_00" / "save.failed.csv"
    assert summary["failed_records_uri"] == f"file://{expected}"
    assert _read_csv(expected)[0]["Industry"] == "Energy"
    assert "summary" not in context["ti"].pushed


def test_upsert_from_jsonl_gz_then_update_and_delete(sf_conn, custom_emulator, context, tmp_path) -> None:
    conn = sf_conn("sf_custom", server=custom_emulator)
    hook = SalesforceRestHook(salesforce_conn_id=conn)
    source = tmp_path / "accounts.jsonl.gz"
    lines = [{"External_Id__c": f"EXT-{i}", "Name": f"Ext {i}"} for i in range(3)]
    source.write_bytes(gzip.compress("\n".join(json.dumps(line) for line in lines).encode()))
    upsert = SalesforceUpsertRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account",
                                             source=str(source), external_id_field="External_Id__c")
    first = upsert.execute(context)
    assert first["operation"] == "upsert" and len(first["created_ids"]) == 3
    again = upsert.execute(context)  # same external ids: updates, nothing created
    assert (again["succeeded"], again["created_ids"]) == (3, [])

    update = SalesforceUpdateRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account",
                                             records=[{"Id": i, "Rating": "Hot"} for i in first["created_ids"]])
    assert update.execute(context)["succeeded"] == 3
    assert {r["Rating"] for r in hook.query("SELECT Rating FROM Account")} == {"Hot"}

    delete = SalesforceDeleteRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account",
                                             records=first["created_ids"][:2] + ["001000000000000AAA"],
                                             max_failed_records=1, failed_records_uri=f"file://{tmp_path}/del.jsonl")
    summary = delete.execute(context)
    assert (summary["succeeded"], summary["failed"]) == (2, 1)
    assert list(iter_records(tmp_path / "del.jsonl"))[0]["Id"] == "001000000000000AAA"
    assert len(list(hook.query("SELECT Id FROM Account"))) == 1


def test_parquet_source(conn, hook, context, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow.sdk import ObjectStoragePath

    path = tmp_path / "accounts.parquet"
    pq.write_table(pa.table({"Name": ["P1", "P2"], "Industry": ["Energy", None]}), path)
    summary = SalesforceCreateRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account",
                                              source=ObjectStoragePath(f"file://{path}")).execute(context)
    assert summary["succeeded"] == 2
    assert [(r["Name"], r["Industry"]) for r in _accounts(hook)] == [("P1", "Energy"), ("P2", None)]


def test_all_or_none_fails_the_whole_call(conn, hook, context, tmp_path) -> None:
    records = [{"Name": "Rolled back"}, {"Industry": "Energy"}, {"Name": "Next call"}]
    op = SalesforceCreateRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account", records=records,
                                         all_or_none=True, batch_size=2, max_failed_records=2,
                                         failed_records_uri=str(tmp_path / "failed.csv"))
    summary = op.execute(context)
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (3, 1, 2)
    assert [r["Name"] for r in _accounts(hook)] == ["Next call"]
    rows = _read_csv(tmp_path / "failed.csv")
    assert [r["Name"] for r in rows] == ["Rolled back", ""]
    assert rows[0]["sf__Error"].startswith("ALL_OR_NONE_OPERATION_ROLLED_BACK")
    assert rows[1]["sf__Error"].startswith("REQUIRED_FIELD_MISSING")


def test_empty_input_makes_no_call(conn, emulator_admin, context, tmp_path, caplog) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("Name,Industry\n")
    before = emulator_admin.stats()["requests_total"]
    with caplog.at_level("INFO"):
        summary = SalesforceCreateRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account",
                                                  source=source).execute(context)
    assert summary == {"operation": "insert", "sobject": "Account", "records": 0, "succeeded": 0, "failed": 0,
                       "unknown": 0, "created_ids": [], "failed_records_uri": None, "outcome_unknown_uri": None}
    assert emulator_admin.stats()["requests_total"] == before
    assert "No input records: nothing to insert on Account" in caplog.text


def test_created_ids_only_up_to_1000(conn, context) -> None:
    records = [{"Name": f"A{i}"} for i in range(1001)]
    summary = SalesforceCreateRecordsOperator(task_id="save", salesforce_conn_id=conn, sobject="Account",
                                              records=records, concurrency=8).execute(context)
    assert summary["succeeded"] == 1001 and summary["created_ids"] is None


def test_bad_save_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one of records= and source="):
        SalesforceCreateRecordsOperator(task_id="t", sobject="Account")
    with pytest.raises(ValueError, match="exactly one of records= and source="):
        SalesforceCreateRecordsOperator(task_id="t", sobject="Account", records=[], source="a.csv")
    with pytest.raises(ValueError, match="upsert needs external_id_field"):
        SalesforceUpsertRecordsOperator(task_id="t", sobject="Account", records=[])
    with pytest.raises(ValueError, match="operation must be"):
        SalesforceSaveRecordsOperator(task_id="t", sobject="Account", records=[], operation="merge")
    with pytest.raises(ValueError, match="max_failed_records"):
        SalesforceCreateRecordsOperator(task_id="t", sobject="Account", records=[], max_failed_records=-1)


def test_records_must_be_a_list(conn, context) -> None:
    op = SalesforceCreateRecordsOperator(task_id="t", salesforce_conn_id=conn, sobject="Account",
                                         records="[{'Name': 'x'}]")
    with pytest.raises(TypeError, match="records must be a list of dicts, got str"):
        op.execute(context)


def test_save_templated_fields_render(tmp_path) -> None:
    op = SalesforceUpsertRecordsOperator(
        task_id="t", salesforce_conn_id="{{ params.conn }}", sobject="{{ params.obj }}",
        source="file://{{ params.dir }}/{{ ds }}.csv", external_id_field="{{ params.ext }}",
        failed_records_uri="file://{{ params.dir }}/failed-{{ ds }}.csv",
    )
    op.render_template_fields({"params": {"conn": "c1", "obj": "Contact", "dir": str(tmp_path), "ext": "Ext__c"},
                               "ds": "2026-01-02"})
    assert (op.salesforce_conn_id, op.sobject, op.external_id_field) == ("c1", "Contact", "Ext__c")
    assert op.source == f"file://{tmp_path}/2026-01-02.csv"
    assert op.failed_records_uri == f"file://{tmp_path}/failed-2026-01-02.csv"


# -- query, search, get -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_query_to_file(conn, hook, context, tmp_path, suffix) -> None:
    account = hook.create("Account", {"Name": "Parent"})
    hook.create("Contact", {"LastName": "With", "AccountId": account})
    hook.create("Contact", {"LastName": "Without"})
    output = tmp_path / "out" / f"contacts.{suffix}"
    op = SalesforceQueryOperator(task_id="q", salesforce_conn_id=conn, output_uri=f"file://{output}",
                                 soql="SELECT Id, LastName, Account.Name FROM Contact ORDER BY LastName DESC",
                                 batch_size=200)
    summary = op.execute(context)
    assert summary == {"output_uri": f"file://{output}", "format": suffix, "rows": 2,
                       "columns": ["Id", "LastName", "Account.Name"]}
    rows = list(iter_records(output))
    assert [(r["LastName"], r.get("Account.Name")) for r in rows] == [("Without", None), ("With", "Parent")]


def test_query_pages_through_many_rows_to_csv(conn, hook, context, tmp_path) -> None:
    SalesforceCreateRecordsOperator(task_id="s", salesforce_conn_id=conn, sobject="Account",
                                    records=[{"Name": f"A{i:04d}"} for i in range(2500)], concurrency=8).execute(context)
    output = tmp_path / "accounts.csv.gz"
    summary = SalesforceQueryOperator(task_id="q", salesforce_conn_id=conn, soql="SELECT Name FROM Account",
                                      output_uri=str(output), output_format="csv.gz").execute(context)
    assert summary["rows"] == 2500
    assert sorted(r["Name"] for r in iter_records(output)) == [f"A{i:04d}" for i in range(2500)]


def test_query_to_xcom_and_the_cap(conn, hook, context) -> None:
    for i in range(3):
        hook.create("Account", {"Name": f"X{i}", "Industry": "Energy"})
    op = SalesforceQueryOperator(task_id="q", salesforce_conn_id=conn,
                                 soql="SELECT Name, Industry FROM Account ORDER BY Name")
    assert op.execute(context) == [{"Name": f"X{i}", "Industry": "Energy"} for i in range(3)]
    capped = SalesforceQueryOperator(task_id="q", salesforce_conn_id=conn, soql="SELECT Name FROM Account",
                                     max_xcom_rows=2)
    with pytest.raises(SalesforceXComLimitError, match="more than max_xcom_rows=2 rows; write it to a file"):
        capped.execute(context)


def test_query_include_deleted(conn, hook, context) -> None:
    record = hook.create("Account", {"Name": "Gone"})
    hook.delete("Account", record)
    soql = "SELECT Name, IsDeleted FROM Account"
    assert SalesforceQueryOperator(task_id="q", salesforce_conn_id=conn, soql=soql).execute(context) == []
    rows = SalesforceQueryOperator(task_id="q", salesforce_conn_id=conn, soql=soql,
                                   include_deleted=True).execute(context)
    assert rows == [{"Name": "Gone", "IsDeleted": True}]


def test_search_operator(conn, hook, context, tmp_path) -> None:
    hook.create("Account", {"Name": "Searchable Acme"})
    hook.create("Contact", {"LastName": "Acme"})
    sosl = "FIND {Acme} IN ALL FIELDS RETURNING Account(Id, Name), Contact(Id, LastName)"
    rows = SalesforceSearchOperator(task_id="s", salesforce_conn_id=conn, sosl=sosl).execute(context)
    assert sorted(r.get("Name") or r.get("LastName") for r in rows) == ["Acme", "Searchable Acme"]
    output = tmp_path / "found.jsonl"
    summary = SalesforceSearchOperator(task_id="s", salesforce_conn_id=conn, sosl=sosl,
                                       output_uri=str(output)).execute(context)
    assert summary["rows"] == 2 and len(list(iter_records(output))) == 2


def test_get_records_operator(conn, hook, context) -> None:
    first = hook.create("Account", {"Name": "G1", "Industry": "Energy"})
    missing = "001000000000000AAA"
    rows = SalesforceGetRecordsOperator(task_id="g", salesforce_conn_id=conn, sobject="Account",
                                        ids=[first, missing], fields=["Name", "Industry"]).execute(context)
    assert rows[0]["Name"] == "G1" and rows[0]["Industry"] == "Energy" and "attributes" not in rows[0]
    assert rows[1] is None


# -- describe, composite, calls, changed records ------------------------------------------------------------------
def test_describe_operator(conn, context) -> None:
    account = SalesforceDescribeOperator(task_id="d", salesforce_conn_id=conn, sobject="Account").execute(context)
    assert account["name"] == "Account" and any(f["name"] == "Name" for f in account["fields"])
    org = SalesforceDescribeOperator(task_id="d", salesforce_conn_id=conn).execute(context)
    assert "Contact" in {s["name"] for s in org["sobjects"]}


def test_composite_operator_kinds(conn, hook, context) -> None:
    composite = SalesforceCompositeOperator(task_id="c", salesforce_conn_id=conn, subrequests=[
        {"method": "POST", "url": "/services/data/v64.0/sobjects/Account", "referenceId": "acct", "body": {"Name": "C1"}},
        {"method": "POST", "url": "/services/data/v64.0/sobjects/Contact", "referenceId": "ct",
         "body": {"LastName": "Kid", "AccountId": "@{acct.id}"}},
    ], all_or_none=True).execute(context)
    assert [r["httpStatusCode"] for r in composite["compositeResponse"]] == [201, 201]
    batch = SalesforceCompositeOperator(task_id="c", salesforce_conn_id=conn, kind="batch", subrequests=[
        {"method": "GET", "url": "v64.0/limits"}]).execute(context)
    assert batch["hasErrors"] is False
    tree = SalesforceCompositeOperator(task_id="c", salesforce_conn_id=conn, kind="tree", sobject="Account", records=[
        {"attributes": {"type": "Account", "referenceId": "ref1"}, "Name": "Tree"}]).execute(context)
    assert tree["hasErrors"] is False and tree["results"][0]["referenceId"] == "ref1"
    graph = SalesforceCompositeOperator(task_id="c", salesforce_conn_id=conn, kind="graph", graphs=[
        {"graphId": "g1", "compositeRequest": [{"method": "POST", "url": "/services/data/v64.0/sobjects/Account",
                                                "referenceId": "a", "body": {"Name": "Graph"}}]}]).execute(context)
    assert graph["graphs"][0]["isSuccessful"] is True
    assert {r["Name"] for r in hook.query("SELECT Name FROM Account")} == {"C1", "Tree", "Graph"}
    with pytest.raises(ValueError, match="kind='tree' needs sobject= and records="):
        SalesforceCompositeOperator(task_id="c", kind="tree", records=[])
    with pytest.raises(ValueError, match="kind must be one of"):
        SalesforceCompositeOperator(task_id="c", kind="soap", subrequests=[])


def test_rest_call_and_apex_rest(conn, hook, context) -> None:
    record = hook.create("Account", {"Name": "Called"})
    body = SalesforceRestCallOperator(task_id="r", salesforce_conn_id=conn, path=f"sobjects/Account/{record}",
                                      query_params={"fields": "Name"}).execute(context)
    assert body["Name"] == "Called"
    assert SalesforceRestCallOperator(task_id="r", salesforce_conn_id=conn, method="patch",
                                      path=f"sobjects/Account/{record}", json={"Rating": "Warm"}).execute(context) is None
    assert hook.get("Account", record, fields=["Rating"])["Rating"] == "Warm"
    # the default emulator has no Apex REST endpoint: Salesforce's 404 comes through as our error
    with pytest.raises(SalesforceNotFoundError):
        SalesforceApexRestOperator(task_id="a", salesforce_conn_id=conn, path="Nothing/here").execute(context)


def test_get_updated_and_deleted_default_to_the_data_interval(conn, hook, context) -> None:
    now = datetime.now(timezone.utc)
    changed = hook.create("Account", {"Name": "Changed"})
    record = hook.create("Account", {"Name": "Deleted"})
    hook.delete("Account", record)
    window = {**context, "data_interval_start": now - timedelta(hours=1), "data_interval_end": now + timedelta(minutes=5)}
    updated = SalesforceGetUpdatedOperator(task_id="u", salesforce_conn_id=conn, sobject="Account").execute(window)
    assert updated["ids"] == [changed]
    deleted = SalesforceGetDeletedOperator(task_id="d", salesforce_conn_id=conn, sobject="Account",
                                           start=(now - timedelta(hours=1)).isoformat(),
                                           end=(now + timedelta(minutes=5)).isoformat()).execute(context)
    assert [r["id"] for r in deleted["deletedRecords"]] == [record]
    with pytest.raises(ValueError, match="No window"):
        SalesforceGetDeletedOperator(task_id="d", salesforce_conn_id=conn, sobject="Account").execute(context)
    with pytest.raises(ValueError, match="start must be a datetime or an ISO 8601 string"):
        SalesforceGetDeletedOperator(task_id="d", salesforce_conn_id=conn, sobject="Account", start="yesterday",
                                     end=now.isoformat()).execute(context)


def test_templated_fields_of_read_operators() -> None:
    ctx = {"params": {"obj": "Account", "conn": "c2", "dir": "/tmp/x"}, "ds": "2026-01-03"}
    query = SalesforceQueryOperator(task_id="q", salesforce_conn_id="{{ params.conn }}",
                                    soql="SELECT Id FROM {{ params.obj }} WHERE CreatedDate > {{ ds }}T00:00:00Z",
                                    output_uri="file://{{ params.dir }}/{{ ds }}.parquet", output_format="{{ 'parquet' }}")
    query.render_template_fields(ctx)
    assert query.soql == "SELECT Id FROM Account WHERE CreatedDate > 2026-01-03T00:00:00Z"
    assert (query.output_uri, query.output_format, query.salesforce_conn_id) == (
        "file:///tmp/x/2026-01-03.parquet", "parquet", "c2")
    call = SalesforceRestCallOperator(task_id="r", path="sobjects/{{ params.obj }}", query_params={"d": "{{ ds }}"})
    call.render_template_fields(ctx)
    assert (call.path, call.query_params) == ("sobjects/Account", {"d": "2026-01-03"})
    changed = SalesforceGetUpdatedOperator(task_id="u", sobject="{{ params.obj }}", start="{{ ds }}T00:00:00+00:00",
                                           end="{{ ds }}T06:00:00+00:00")
    changed.render_template_fields(ctx)
    assert (changed.sobject, changed.start) == ("Account", "2026-01-03T00:00:00+00:00")
