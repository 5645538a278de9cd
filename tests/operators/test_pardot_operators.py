"""Pardot operators against the emulator: query to XCom / file, upsert from a file, import and
export (worker and deferrable waits), generic call; bad input and quota exhaustion."""

from __future__ import annotations

import asyncio
import csv
import json
import time

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError, SalesforceRequestLimitError
from airflow_provider_salesforce_suite.hooks.pardot import PardotHook
from airflow_provider_salesforce_suite.operators.pardot import (
    PardotCallOperator,
    PardotExportOperator,
    PardotImportOperator,
    PardotQueryOperator,
    PardotRecordsFailedError,
    PardotUpsertProspectsOperator,
)
from airflow_provider_salesforce_suite.operators.rest import SalesforceXComLimitError
from tests.operators.resumable_support import Crash, TaskStateStore, requests_to


@pytest.fixture
def conn(pardot_conn) -> str:
    return pardot_conn()


def _csv(path, rows: list[dict]) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _prospects(conn: str, n: int) -> None:
    hook = PardotHook(conn)
    for i in range(n):
        hook.create_record("prospects", {"email": f"q{i}@example.com", "score": i})


def test_query_to_xcom_with_cap_and_to_file(conn, tmp_path) -> None:
    _prospects(conn, 5)
    rows = PardotQueryOperator(task_id="q", pardot_conn_id=conn, object_name="prospects", fields=["id", "email"],
                               page_size=2).execute({})
    assert [r["email"] for r in rows] == [f"q{i}@example.com" for i in range(5)]
    with pytest.raises(SalesforceXComLimitError, match="max_xcom_rows=3"):
        PardotQueryOperator(task_id="q", pardot_conn_id=conn, object_name="prospects", max_xcom_rows=3).execute({})
    out = tmp_path / "out" / "prospects.jsonl"
    summary = PardotQueryOperator(task_id="q", pardot_conn_id=conn, object_name="prospects",
                                  fields=["id", "email", "score"], filters={"score": 3},
                                  output_uri=str(out)).execute({})
    assert summary["rows"] == 1 and summary["columns"] == ["id", "email", "score"]
    assert json.loads(out.read_text().splitlines()[0]) == {"id": 4, "email": "q3@example.com", "score": 3}


def test_query_invalid_field_names_fail(conn) -> None:
    with pytest.raises(SalesforceApiError, match="PARDOT_224"):
        PardotQueryOperator(task_id="q", pardot_conn_id=conn, object_name="prospects", fields=["id", "emial"]).execute({})


def test_upsert_from_file_reports_invalid_emails(conn, tmp_path) -> None:
    source = _csv(tmp_path / "p.csv", [{"email": "a@example.com", "firstName": "A"},
                                       {"email": "not-an-email", "firstName": "B"},
                                       {"email": "a@example.com", "firstName": "A2"}])
    summary = PardotUpsertProspectsOperator(task_id="u", pardot_conn_id=conn, input_uri=source,
                                            max_failed_records=1).execute({})
    assert (summary["processed"], summary["succeeded"], summary["failed"]) == (3, 2, 1)
    assert summary["errors"][0]["email"] == "not-an-email"
    (record,) = PardotHook(conn).iter_records("prospects", ["email", "firstName"])
    assert record == {"email": "a@example.com", "firstName": "A2"}
    with pytest.raises(PardotRecordsFailedError, match="1 of 3 prospects were rejected") as err:
        PardotUpsertProspectsOperator(task_id="u", pardot_conn_id=conn, input_uri=source).execute({})
    assert err.value.summary["failed"] == 1


def test_upsert_v4_batches(conn, tmp_path) -> None:
    source = _csv(tmp_path / "p.csv", [{"email": f"v{i}@example.com"} for i in range(60)])
    summary = PardotUpsertProspectsOperator(task_id="u", pardot_conn_id=conn, input_uri=source,
                                            mode="v4_create").execute({})
    assert summary["succeeded"] == 60
    with pytest.raises(ValueError, match="mode"):
        PardotUpsertProspectsOperator(task_id="u", input_uri=source, mode="bulk")


def test_quota_exhausted_mid_run_stops_the_upsert(conn, pardot_admin, tmp_path) -> None:
    source = _csv(tmp_path / "p.csv", [{"email": f"z{i}@example.com"} for i in range(5)])
    PardotHook(conn).session.authenticator.get_token()
    pardot_admin(daily_quota=2)
    with pytest.raises(SalesforceRequestLimitError, match="122"):
        PardotUpsertProspectsOperator(task_id="u", pardot_conn_id=conn, input_uri=source).execute({})
    assert pardot_admin()["used"] == 2


def test_import_keeps_good_rows_and_writes_bad_ones(conn, tmp_path) -> None:
    source = _csv(tmp_path / "in.csv", [{"email": "i1@example.com", "firstName": "One"},
                                        {"email": "broken", "firstName": "Bad"},
                                        {"email": "i2@example.com", "firstName": "Two"}])
    errors = tmp_path / "errors.csv"
    summary = PardotImportOperator(task_id="i", pardot_conn_id=conn, input_uri=source, errors_uri=str(errors),
                                   poll_interval=0.05, deferrable=False).execute({})
    assert (summary["createdCount"], summary["errorCount"]) == (2, 1) and summary["errors_uri"] == str(errors)
    (bad,) = list(csv.DictReader(errors.open()))
    assert bad["email"] == "broken" and "Invalid prospect email" in bad["error"]
    with pytest.raises(PardotRecordsFailedError, match="rejected 1 rows"):
        PardotImportOperator(task_id="i", pardot_conn_id=conn, input_uri=source, max_failed_records=0,
                             poll_interval=0.05, deferrable=False).execute({})


def test_import_failed_job_fails_the_task(conn, pardot_admin, tmp_path) -> None:
    pardot_admin(fail_next_job=True)
    source = _csv(tmp_path / "in.csv", [{"email": "f@example.com"}])
    with pytest.raises(AirflowFailException, match="ended Failed"):
        PardotImportOperator(task_id="i", pardot_conn_id=conn, input_uri=source, poll_interval=0.05,
                             deferrable=False).execute({})


def test_export_deferrable_writes_the_file(conn, pardot_admin, tmp_path) -> None:
    pardot_admin("/seed", object="visitor-activities",
                 records=[{"prospectId": i, "type": 2, "details": f"page {i}"} for i in range(3)])
    out = tmp_path / "activities.csv"
    op = PardotExportOperator(task_id="e", pardot_conn_id=conn, procedure="visitorActivity_byDateAndType",
                              fields=["id", "prospectId", "details"], output_uri=str(out), poll_interval=0.05,
                              deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})

    async def first():
        async for event in deferred.value.trigger.run():
            return event.payload

    result = op.execute_complete({}, event=asyncio.run(first()))
    assert result["rows"] == 3 and out.read_text().splitlines()[:2] == ["id,prospectId,details", "1,0,page 0"]


def test_call_operator_v5_and_v4(conn) -> None:
    created = PardotCallOperator(task_id="c", pardot_conn_id=conn, method="POST", path="/api/v5/objects/lists",
                                 query_params={"fields": "id,name"}, json_body={"name": "VIPs"}).execute({})
    assert created == {"id": 1, "name": "VIPs"}
    reply = PardotCallOperator(task_id="c", pardot_conn_id=conn, path="/api/list/version/4/do/query").execute({})
    assert reply["result"]["total_results"] == 1
    assert PardotCallOperator(task_id="c", pardot_conn_id=conn, method="DELETE",
                              path="/api/v5/objects/lists/1").execute({}) is None


# -- retries and crashes (ResumableJobMixin) -------------------------------------------------------

def _import_op(conn: str, source: str, **kwargs) -> PardotImportOperator:
    return PardotImportOperator(task_id="i", pardot_conn_id=conn, input_uri=source, poll_interval=0.05,
                                deferrable=False, **kwargs)


def test_import_retry_after_a_crash_reconnects_instead_of_importing_twice(conn, pardot_admin, emulator_admin,
                                                                          tmp_path) -> None:
    pardot_admin(job_seconds=1.0, fail_next_job=False)
    source = _csv(tmp_path / "in.csv", [{"email": f"once{i}@example.com"} for i in range(4)])
    context = {"task_state_store": TaskStateStore()}
    # The worker submits, then dies while waiting: the import id is in the task state store.
    job_id = _import_op(conn, source).submit_job(context)
    assert context["task_state_store"] == {PardotImportOperator.external_id_key: job_id}
    assert PardotHook(conn).get_import(job_id)["state"] in ("Waiting", "Processing")
    # The retry (a new operator object, same task state) waits for that import and collects it.
    summary = _import_op(conn, source).execute(context)
    assert (summary["job_id"], summary["state"], summary["createdCount"]) == (job_id, "Complete", 4)
    assert requests_to(emulator_admin, "POST /api/v5/imports") == 1
    # A retry after the import finished: collected again, nothing submitted.
    again = _import_op(conn, source).execute(context)
    assert again == summary and requests_to(emulator_admin, "POST /api/v5/imports") == 1
    assert requests_to(emulator_admin, f"PATCH /api/v5/imports/{job_id}") == 1
    assert len(list(PardotHook(conn).iter_records("prospects", ["id"]))) == 4


@pytest.mark.parametrize("dies_in", ["upload_import_batch", "submit_import"])
def test_import_crash_before_ready_leaves_the_open_import_and_imports_once(conn, emulator_admin, tmp_path,
                                                                           dies_in) -> None:
    source = _csv(tmp_path / "in.csv", [{"email": f"open{i}@example.com"} for i in range(3)])
    context = {"task_state_store": TaskStateStore()}

    def crash(self, *args, **kwargs):
        raise Crash(f"worker died in {dies_in}")

    first = _import_op(conn, source, batch_rows=2)
    first.hook = type("CrashingHook", (PardotHook,), {dies_in: crash})(conn)
    with pytest.raises(Crash):
        first.execute(context)
    open_id = context["task_state_store"][PardotImportOperator.external_id_key]  # kept as soon as created
    assert PardotHook(conn).get_import(open_id)["state"] == "Open"
    summary = _import_op(conn, source, batch_rows=2).execute(context)
    assert summary["job_id"] != open_id and (summary["state"], summary["createdCount"]) == ("Complete", 3)
    assert context["task_state_store"][PardotImportOperator.external_id_key] == summary["job_id"]
    # Pardot never processes an import that was not set Ready: the abandoned one loaded nothing.
    assert PardotHook(conn).get_import(open_id)["state"] == "Open"
    assert requests_to(emulator_admin, "POST /api/v5/imports") == 2
    assert len(list(PardotHook(conn).iter_records("prospects", ["id"]))) == 3


def test_import_that_failed_having_loaded_nothing_is_submitted_again(conn, pardot_admin, emulator_admin,
                                                                      tmp_path) -> None:
    pardot_admin(fail_next_job=True)
    source = _csv(tmp_path / "in.csv", [{"email": "again@example.com"}])
    context = {"task_state_store": TaskStateStore()}
    failed_id = _import_op(conn, source).submit_job(context)  # the worker dies; the import then fails
    hook = PardotHook(conn)
    while hook.get_import(failed_id)["state"] != "Failed":
        time.sleep(0.05)
    summary = _import_op(conn, source).execute(context)
    assert summary["job_id"] != failed_id and summary["createdCount"] == 1
    assert requests_to(emulator_admin, "POST /api/v5/imports") == 2


def test_import_that_failed_after_loading_rows_fails_the_retry_without_resubmitting(conn, emulator_admin,
                                                                                     tmp_path) -> None:
    hook = PardotHook(conn)
    # A stored import whose first batch loaded and whose second batch broke it (not UTF-8): Failed.
    job_id = hook.create_import()
    hook.upload_import_batch(job_id, b"email\nloaded@example.com\n")
    hook.upload_import_batch(job_id, b"email\n\xff\xfe\n")
    hook.submit_import(job_id)
    while hook.get_import(job_id)["state"] != "Failed":
        time.sleep(0.05)
    context = {"task_state_store": TaskStateStore({PardotImportOperator.external_id_key: job_id})}
    source = _csv(tmp_path / "in.csv", [{"email": "loaded@example.com"}])
    with pytest.raises(AirflowFailException, match=f"import {job_id} ended Failed"):
        _import_op(conn, source).execute(context)
    assert requests_to(emulator_admin, "POST /api/v5/imports") == 1


def test_export_retry_reconnects_on_the_worker_and_by_deferring(conn, pardot_admin, emulator_admin,
                                                                tmp_path) -> None:
    pardot_admin(job_seconds=1.0)
    _prospects(conn, 2)
    out = tmp_path / "prospects.csv"

    def export(**kwargs) -> PardotExportOperator:
        return PardotExportOperator(task_id="e", pardot_conn_id=conn, procedure="prospect_byUpdatedAt",
                                    fields=["id", "email"], output_uri=str(out), poll_interval=0.05, **kwargs)

    context = {"task_state_store": TaskStateStore()}
    job_id = export(deferrable=False).submit_job(context)
    context["task_state_store"].set(PardotExportOperator.external_id_key, job_id)  # as the mixin does
    # A deferrable retry defers on the running export instead of starting another.
    with pytest.raises(TaskDeferred) as deferred:
        export(deferrable=True).execute(context)
    assert deferred.value.trigger.job_id == job_id
    result = export(deferrable=False).execute(context)
    assert (result["job_id"], result["rows"]) == (job_id, 2)
    assert requests_to(emulator_admin, "POST /api/v5/exports") == 1
    # durable=False keeps nothing: every try submits.
    context = {"task_state_store": TaskStateStore()}
    assert export(deferrable=False, durable=False).execute(context)["job_id"] != job_id
    assert context["task_state_store"] == {} and requests_to(emulator_admin, "POST /api/v5/exports") == 2
