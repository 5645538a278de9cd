"""Bulk operators against the emulator, through ``execute(context)``: summaries, result files,
max_failed_records, bad input, failed jobs, session expiry, timeouts, the deferrable path
(TaskDeferred -> trigger -> execute_complete), crash-safe resumption and incremental extracts."""

from __future__ import annotations

import asyncio
import csv
import logging
import time

import pyarrow.parquet as pq
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_salesforce_suite.hooks.bulk import (
    SalesforceBulkError,
    SalesforceBulkHook,
    SalesforceBulkInputError,
    SalesforceBulkJobFailedError,
    SalesforceBulkJobPurgedError,
)
from airflow_provider_salesforce_suite.io import RecordFileError
from airflow_provider_salesforce_suite.operators.bulk import (
    SalesforceBulkIngestOperator,
    SalesforceBulkQueryOperator,
    SalesforceBulkRecordsFailedError,
    SalesforceBulkWaitTimeoutError,
)
from tests.hooks.bulk_support import bulk_settings, calls, count, read_csv
from tests.operators.resumable_support import Crash, TaskStateStore

FAST = {"poll_interval": 0.02}


class _TaskInstance:
    dag_id, run_id, task_id, map_index = "bulk_dag", "manual__2026-01-01T00:00:00+00:00", "load", -1
    stats_tags: dict = {}

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


class _AssetStores:
    def __init__(self) -> None:
        self.stores: dict[str, TaskStateStore] = {}

    def __getitem__(self, asset: Asset) -> TaskStateStore:
        return self.stores.setdefault(asset.name, TaskStateStore())


@pytest.fixture
def context() -> dict:
    return {"ti": _TaskInstance(), "params": {}, "task_state_store": TaskStateStore(), "asset_state_store": _AssetStores()}


@pytest.fixture
def conn(sf_conn) -> str:
    return sf_conn("sf_bulk_ops")


@pytest.fixture
def hook(conn) -> SalesforceBulkHook:
    return SalesforceBulkHook(conn)


def _write_csv(path, header, rows, *, bom=False) -> str:
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _fresh(context: dict) -> dict:
    """Another task instance's context: its own task state store (the ti and asset stores shared)."""
    return {**context, "task_state_store": TaskStateStore()}


def _ingest(conn, tmp_path, **kwargs) -> SalesforceBulkIngestOperator:
    kwargs.setdefault("results_dir", str(tmp_path / "results"))
    return SalesforceBulkIngestOperator(task_id="load", salesforce_conn_id=conn, sobject="Account",
                                        deferrable=False, **FAST, **kwargs)


def _ingest_jobs(hook) -> list[dict]:
    return list(hook.list_jobs(kind="ingest"))


def _check(summary: dict) -> None:
    assert summary["processed"] + summary["failed"] + summary["unprocessed"] == summary["records"]


# -- ingest ------------------------------------------------------------------------------------------------------
def test_csv_source_with_bom_and_rejected_rows(conn, hook, context, tmp_path) -> None:
    rows = [[f"Acc {i}", str(i)] if i % 4 else ["", str(i)] for i in range(1, 21)]  # every 4th has no Name
    source = _write_csv(tmp_path / "accounts.csv", ["Name", "NumberOfEmployees"], rows, bom=True)
    op = _ingest(conn, tmp_path, source=source, max_failed_records=10)
    summary = op.execute(_fresh(context))
    _check(summary)
    assert (summary["records"], summary["processed"], summary["failed"], summary["unprocessed"]) == (20, 15, 5, 0)
    assert len(summary["job_ids"]) == 1 and summary["results_dir"] == str(tmp_path / "results")
    failed = read_csv(summary["failed_uri"])
    assert [int(r["sf__InputRow"]) for r in failed] == [4, 8, 12, 16, 20]
    assert all(r["sf__Error"].startswith("REQUIRED_FIELD_MISSING") for r in failed)
    successful = read_csv(summary["successful_uri"])
    assert successful[0]["Name"] == "Acc 1" and successful[0]["sf__Id"].startswith("001")  # BOM stripped
    assert count(hook, "SELECT Id FROM Account") == 15
    assert not (tmp_path / "results" / "_chunks").exists()  # the upload copies are dropped after collection


def test_too_many_failures_fail_the_task_after_writing_files(conn, context, tmp_path) -> None:
    records = [{"Name": "ok"}, {"Description": "no name"}, {"Description": "no name either"}]
    with pytest.raises(SalesforceBulkRecordsFailedError, match=r"2 of 3 Account records failed.*max_failed_records=1"):
        _ingest(conn, tmp_path, records=records, max_failed_records=1).execute(_fresh(context))
    pushed = context["ti"].pushed["summary"]
    _check(pushed)
    assert pushed["failed"] == 2 and len(read_csv(pushed["failed_uri"])) == 2


def test_bulk_v1_records_and_delete_then_hard_delete(conn, hook, context, tmp_path) -> None:
    summary = _ingest(conn, tmp_path, records=[{"Name": f"V1 {i}"} for i in range(30)], api="1.0",
                      max_records_per_upload=10).execute(_fresh(context))
    _check(summary)
    assert summary["api"] == "1.0" and summary["processed"] == 30 and len(summary["job_ids"]) == 1
    ids = [{"Id": r["sf__Id"]} for r in read_csv(summary["successful_uri"])]
    deleted = _ingest(conn, tmp_path, records=ids[:20], operation="delete",
                      results_dir=str(tmp_path / "del")).execute(_fresh(context))
    assert deleted["processed"] == 20 and count(hook, "SELECT Id FROM Account") == 10
    hard = _ingest(conn, tmp_path, records=ids[20:], operation="hardDelete",
                   results_dir=str(tmp_path / "hard")).execute(_fresh(context))
    _check(hard)
    assert hard["processed"] + hard["failed"] == 10


def test_upsert_duplicate_external_ids_and_parquet_results(sf_conn, custom_emulator, context, tmp_path) -> None:
    conn = sf_conn("sf_bulk_custom", server=custom_emulator)
    records = [{"External_Id__c": "X1", "Name": "one"}, {"External_Id__c": "X2", "Name": "two"},
               {"External_Id__c": "X1", "Name": "one again"}]
    summary = _ingest(conn, tmp_path, records=records, operation="upsert", external_id_field="External_Id__c",
                      results_format="parquet", max_failed_records=3).execute(_fresh(context))
    _check(summary)
    assert summary["records"] == 3 and summary["failed"] >= 1
    failed = pq.read_table(summary["failed_uri"].removeprefix("file://")).to_pylist()
    assert any("DUPLICATE" in row["sf__Error"] for row in failed)
    with pytest.raises(ValueError, match="upsert needs external_id_field"):
        _ingest(conn, tmp_path, records=records, operation="upsert")


def test_empty_input_creates_no_job(conn, hook, context, tmp_path) -> None:
    source = _write_csv(tmp_path / "empty.csv", ["Name"], [])
    for op in (_ingest(conn, tmp_path, source=source), _ingest(conn, tmp_path, records=[])):
        summary = op.execute(_fresh(context))
        assert summary["job_ids"] == [] and summary["records"] == 0 and summary["failed_uri"] is None
    assert _ingest_jobs(hook) == []


def test_ragged_csv_fails_before_any_job(conn, hook, context, tmp_path) -> None:
    source = tmp_path / "ragged.csv"
    source.write_text("Name,Phone\nA,1\nB,2,extra\n")
    with pytest.raises(RecordFileError, match="line 3: 3 values for 2 columns"):
        _ingest(conn, tmp_path, source=str(source)).execute(_fresh(context))
    assert _ingest_jobs(hook) == []


def test_unknown_column_fails_the_job_with_salesforces_message(conn, context, tmp_path) -> None:
    with pytest.raises(SalesforceBulkRecordsFailedError, match="Failed: .*Nope__c") as raised:
        _ingest(conn, tmp_path, records=[{"Name": "A", "Nope__c": "x"}]).execute(_fresh(context))
    summary = raised.value.summary
    _check(summary)
    assert summary["unprocessed"] + summary["failed"] == 1 and summary["processed"] == 0


def test_job_failed_by_salesforce_surfaces_state_message(conn, emulator_admin, context, tmp_path) -> None:
    bulk_settings(emulator_admin, fail_next_job="InternalServerError : the org hiccuped")
    with pytest.raises(SalesforceBulkRecordsFailedError, match="the org hiccuped"):
        _ingest(conn, tmp_path, records=[{"Name": "A"}, {"Name": "B"}]).execute(_fresh(context))
    summary = context["ti"].pushed["summary"]
    _check(summary)
    assert summary["records"] == 2 and summary["processed"] == 0


def test_timeout_aborts_or_leaves_running(conn, hook, emulator_admin, context, tmp_path) -> None:
    bulk_settings(emulator_admin, min_in_progress_seconds=3)
    op = _ingest(conn, tmp_path, records=[{"Name": "slow"}], timeout=0.3, abort_on_timeout=True)
    with pytest.raises(SalesforceBulkWaitTimeoutError, match="aborted"):
        op.execute(context)
    job_id = context["task_state_store"][op.external_id_key]["job_ids"][0]
    assert hook.get_job(job_id)["state"] == "Aborted"
    left = _ingest(conn, tmp_path, records=[{"Name": "slow"}], timeout=0.3, results_dir=str(tmp_path / "r2"))
    with pytest.raises(SalesforceBulkWaitTimeoutError, match="left running"):
        left.execute({**context, "task_state_store": TaskStateStore()})
    states = {job["id"]: job["state"] for job in _ingest_jobs(hook)}
    assert sorted(states.values()) == ["Aborted", "UploadComplete"] or "InProgress" in states.values()


def test_crash_after_submit_reconnects_instead_of_loading_twice(conn, hook, emulator_admin, context, tmp_path) -> None:
    bulk_settings(emulator_admin, min_in_progress_seconds=1.0)
    records = [{"Name": f"Once {i}"} for i in range(50)]
    first = _ingest(conn, tmp_path, records=records)
    # The submit phase of a worker that then dies: the job ids are in the task state store.
    submission = first.submit_job(context)
    context["task_state_store"].set(first.external_id_key, submission)
    assert len(_ingest_jobs(hook)) == 1
    # The retry (a new operator object, same task state) reconnects to the running job.
    summary = _ingest(conn, tmp_path, records=records).execute(context)
    _check(summary)
    assert summary["job_ids"] == submission["job_ids"] and summary["processed"] == 50
    assert len(_ingest_jobs(hook)) == 1 and count(hook, "SELECT Id FROM Account") == 50
    # A retry after the job completed: still no new job, the results are collected again.
    bulk_settings(emulator_admin, min_in_progress_seconds=0)
    again = _ingest(conn, tmp_path, records=records).execute(context)
    assert again["processed"] == 50 and len(_ingest_jobs(hook)) == 1


class CrashAfter:
    """An input that kills the worker when asked for record ``after + 1``."""

    def __init__(self, records: list[dict], after: int) -> None:
        self.records, self.after = records, after

    def __iter__(self):
        for number, record in enumerate(self.records):
            if number == self.after:
                raise Crash(f"worker died reading record {number + 1}")
            yield record


def _crashing_hook(conn: str, method: str, on_call: int) -> SalesforceBulkHook:
    """A real hook whose ``method`` completes its call to Salesforce, then the worker dies (on the
    ``on_call``-th call): the moment between a request and the note that records it."""
    seen = {"calls": 0}

    def crash_after(self, *args, **kwargs):
        result = getattr(SalesforceBulkHook, method)(self, *args, **kwargs)
        seen["calls"] += 1
        if seen["calls"] == on_call:
            raise Crash(f"worker died right after {method}")
        return result

    return type("CrashingHook", (SalesforceBulkHook,), {method: crash_after})(conn)


def _rows_once(summary: dict, names: list[str]) -> None:
    """Every input row is in exactly one result file, once, with its own values."""
    rows = [row for uri in (summary["successful_uri"], summary["failed_uri"], summary["unprocessed_uri"])
            for row in read_csv(uri)]
    assert sorted(int(row["sf__InputRow"]) for row in rows) == list(range(1, len(names) + 1))
    assert all(row["Name"] == names[int(row["sf__InputRow"]) - 1] for row in rows)


@pytest.mark.parametrize("api", ["2.0", "1.0"])
def test_crash_mid_submission_resumes_without_loading_twice(conn, hook, emulator_admin, context, tmp_path,
                                                            api) -> None:
    names = [f"Resume {i:02d}" for i in range(50)]
    records = [{"Name": name} for name in names]
    # The worker dies reading record 24: uploads of rows 1-10 and 11-20 are in, nothing is stored.
    with pytest.raises(Crash):
        _ingest(conn, tmp_path, records=CrashAfter(records, 23), api=api, max_records_per_upload=10).execute(context)
    assert context["task_state_store"].get(SalesforceBulkIngestOperator.external_id_key) is None
    uploads = ("PUT", "/batches") if api == "2.0" else ("POST", "/batch")
    assert calls(emulator_admin, *uploads) == 2
    # The retry (same task instance, full input) sends only rows 21-50.
    summary = _ingest(conn, tmp_path, records=records, api=api, max_records_per_upload=10).execute(context)
    _check(summary)
    assert (summary["records"], summary["processed"]) == (50, 50)
    assert calls(emulator_admin, *uploads) == 5
    assert len(summary["job_ids"]) == (5 if api == "2.0" else 1)
    assert count(hook, "SELECT Id FROM Account") == 50
    _rows_once(summary, names)
    if api == "1.0":
        assert hook.v1_get_job(summary["job_ids"][0])["state"] == "Closed"


@pytest.mark.parametrize(("api", "method", "settled"), [
    ("2.0", "upload_job_data", "aborted"),   # job created, data uploaded, upload not closed: aborted, sent again
    ("2.0", "close_job", "adopted"),         # upload closed, not yet noted: Salesforce loads it, not sent again
    ("1.0", "v1_add_batch", "adopted"),      # batch added, not yet noted: adopted, not sent again
])
def test_crash_inside_an_upload_is_settled_by_the_retry(conn, hook, emulator_admin, context, tmp_path, api,
                                                        method, settled) -> None:
    names = [f"Settle {i:02d}" for i in range(30)]
    records = [{"Name": name} for name in names]
    first = _ingest(conn, tmp_path, records=records, api=api, max_records_per_upload=10)
    first.hook = _crashing_hook(conn, method, on_call=2)  # dies inside the second upload (rows 11-20)
    with pytest.raises(Crash):
        first.execute(context)
    summary = _ingest(conn, tmp_path, records=records, api=api, max_records_per_upload=10).execute(context)
    _check(summary)
    assert (summary["records"], summary["processed"], summary["unprocessed"]) == (30, 30, 0)
    assert count(hook, "SELECT Id FROM Account") == 30
    _rows_once(summary, names)
    if api == "1.0":
        assert calls(emulator_admin, "POST", "/batch") == 3 and len(summary["job_ids"]) == 1
        return
    states = {job["id"]: job["state"] for job in _ingest_jobs(hook)}
    assert set(summary["job_ids"]) <= set(states) and len(summary["job_ids"]) == 3
    if settled == "aborted":  # the pending job holds no loaded row and is not part of the submission
        assert len(states) == 4 and [s for j, s in states.items() if j not in summary["job_ids"]] == ["Aborted"]
    else:
        assert len(states) == 3 and calls(emulator_admin, "POST", "jobs/ingest") == 3


def test_crash_before_the_job_ids_are_stored_does_not_resubmit(conn, hook, emulator_admin, context,
                                                               tmp_path) -> None:
    records = [{"Name": f"Stored {i}"} for i in range(25)]
    # submit_job returned, and the worker died before the mixin stored its result (its known window)
    _ingest(conn, tmp_path, records=records, max_records_per_upload=10).submit_job(context)
    assert context["task_state_store"].get(SalesforceBulkIngestOperator.external_id_key) is None
    summary = _ingest(conn, tmp_path, records=records, max_records_per_upload=10).execute(context)
    _check(summary)
    assert summary["processed"] == 25 and len(summary["job_ids"]) == 3
    assert calls(emulator_admin, "POST", "jobs/ingest") == 3 and count(hook, "SELECT Id FROM Account") == 25


def test_jobs_that_loaded_nothing_are_submitted_afresh_not_resumed(conn, hook, emulator_admin, context,
                                                                    tmp_path) -> None:
    bulk_settings(emulator_admin, fail_next_job="InternalServerError : the org hiccuped")
    records = [{"Name": f"Again {i}"} for i in range(5)]
    first = _ingest(conn, tmp_path, records=records)
    submission = first.submit_job(context)  # submitted and stored; the worker dies while waiting
    context["task_state_store"].set(first.external_id_key, submission)
    with pytest.raises(SalesforceBulkJobFailedError):
        hook.wait_for_job(submission["job_ids"][0], **FAST)
    # The mixin sees a job that failed before loading anything and submits again: from scratch, not
    # the finished submission kept in results_dir/_chunks (that would fail the same way forever).
    summary = _ingest(conn, tmp_path, records=records).execute(context)
    assert summary["processed"] == 5 and summary["job_ids"] != submission["job_ids"]
    assert calls(emulator_admin, "POST", "jobs/ingest") == 2 and count(hook, "SELECT Id FROM Account") == 5


def test_resume_is_refused_for_changed_input_or_another_run(conn, hook, emulator_admin, context, tmp_path) -> None:
    records = [{"Name": f"Same {i:02d}"} for i in range(30)]
    with pytest.raises(Crash):
        _ingest(conn, tmp_path, records=CrashAfter(records, 15), max_records_per_upload=10).execute(context)
    changed = [dict(r) for r in records]
    changed[4]["Name"] = "Same X4"  # same size, other content
    with pytest.raises(SalesforceBulkError, match=r"input changed.*rows 1-10 \(10 records.*different content"):
        _ingest(conn, tmp_path, records=changed, max_records_per_upload=10).execute(context)
    with pytest.raises(SalesforceBulkError, match="parameters changed.*max_records"):
        _ingest(conn, tmp_path, records=records, max_records_per_upload=5).execute(context)
    other_run = {**context, "ti": type("OtherTi", (_TaskInstance,), {"run_id": "scheduled__2026-01-02"})()}
    with pytest.raises(SalesforceBulkError, match="holds the unfinished submission of 'bulk_dag/manual"):
        _ingest(conn, tmp_path, records=records, max_records_per_upload=10).execute(other_run)
    with pytest.raises(SalesforceBulkError, match="now has 0 records, but 10 were already submitted"):
        _ingest(conn, tmp_path, records=[], max_records_per_upload=10).execute(context)  # emptied: not ignored
    assert calls(emulator_admin, "POST", "jobs/ingest") == 1  # none of the refusals sent anything
    summary = _ingest(conn, tmp_path, records=records, max_records_per_upload=10).execute(context)
    assert summary["processed"] == 30 and count(hook, "SELECT Id FROM Account") == 30


def test_bad_input_partway_aborts_and_a_fixed_retry_sends_only_the_rest(conn, hook, emulator_admin, context,
                                                                        tmp_path) -> None:
    bulk_settings(emulator_admin, min_in_progress_seconds=5)  # the jobs are still running when input turns bad
    good = [[f"Row {i:02d}", str(i)] for i in range(1, 31)]
    source = tmp_path / "accounts.csv"
    _write_csv(source, ["Name", "NumberOfEmployees"], good[:25])
    with open(source, "a") as handle:
        handle.write("Broken,26,extra\n")  # file line 27: data row 26
    op = _ingest(conn, tmp_path, source=str(source), max_records_per_upload=10)
    with pytest.raises(SalesforceBulkInputError, match="line 27") as raised:
        op.execute(context)
    error = raised.value
    assert isinstance(error, RecordFileError) and error.records_submitted == 20
    jobs = {job["id"]: job["state"] for job in _ingest_jobs(hook)}
    assert len(jobs) == 2 and set(jobs.values()) == {"Aborted"}
    text = str(error)
    assert all(job_id in text for job_id in jobs) and "Aborted by this stop" in text and "rows 1-20" in text
    assert [job.records for job in error.jobs] == [10, 10] and all(job.aborted for job in error.jobs)
    # A retry with the same bad file stops at the same line without sending anything.
    with pytest.raises(SalesforceBulkInputError, match="line 27"):
        _ingest(conn, tmp_path, source=str(source), max_records_per_upload=10).execute(context)
    assert calls(emulator_admin, "PUT", "/batches") == 2
    # Fixed (rows 1-20 unchanged): the retry sends rows 21-30 only; the aborted jobs fail the task, and
    # every row is reported once.
    bulk_settings(emulator_admin, min_in_progress_seconds=0)
    _write_csv(source, ["Name", "NumberOfEmployees"], good)
    with pytest.raises(SalesforceBulkRecordsFailedError, match="Aborted") as failed:
        _ingest(conn, tmp_path, source=str(source), max_records_per_upload=10).execute(context)
    summary = failed.value.summary
    _check(summary)
    assert summary["records"] == 30 and calls(emulator_admin, "PUT", "/batches") == 3
    assert len(summary["job_ids"]) == 3 and set(jobs) <= set(summary["job_ids"])
    _rows_once(summary, [row[0] for row in good])
    assert count(hook, "SELECT Id FROM Account") == summary["processed"]


def test_bad_input_partway_v1_aborts_the_job_and_a_fixed_retry_uses_a_new_one(conn, hook, emulator_admin, context,
                                                                               tmp_path) -> None:
    bulk_settings(emulator_admin, min_in_progress_seconds=1)
    good = [[f"V1 row {i:02d}"] for i in range(1, 31)]
    source = tmp_path / "accounts.csv"
    _write_csv(source, ["Name"], good[:25] + [["Broken", "extra"]])  # file line 27
    with pytest.raises(SalesforceBulkInputError, match=r"line 27.*Aborted by this stop \(was Open\)") as raised:
        _ingest(conn, tmp_path, source=str(source), api="1.0", max_records_per_upload=10).execute(context)
    (stopped,) = raised.value.jobs
    assert stopped.records == 20 and hook.v1_get_job(stopped.job_id)["state"] == "Aborted"
    _write_csv(source, ["Name"], good)
    summary = _ingest(conn, tmp_path, source=str(source), api="1.0", max_records_per_upload=10).execute(context)
    _check(summary)
    # the aborted job keeps rows 1-20 (its batches were already running); rows 21-30 go to a new job
    assert summary["job_ids"][0] == stopped.job_id and len(summary["job_ids"]) == 2
    assert calls(emulator_admin, "POST", "/batch") == 3 and summary["records"] == 30
    _rows_once(summary, [row[0] for row in good])
    assert count(hook, "SELECT Id FROM Account") == summary["processed"] == 30


def test_deferrable_path_with_session_expiring_mid_job(conn, hook, emulator_admin, context, tmp_path) -> None:
    bulk_settings(emulator_admin, min_in_progress_seconds=0.5)
    op = SalesforceBulkIngestOperator(task_id="load", salesforce_conn_id=conn, sobject="Account", deferrable=True,
                                      records=[{"Name": f"D {i}"} for i in range(10)],
                                      results_dir=str(tmp_path / "res"), **FAST)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(_fresh(context))
    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_salesforce_suite.triggers.bulk.SalesforceBulkJobTrigger"
    emulator_admin.expire_sessions()  # the triggerer and the resumed worker re-authenticate

    async def first_event():
        async for event in type(trigger)(**kwargs).run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "success" and event["jobs"][0]["records_processed"] == 10
    # What execute_complete needs rides in the event: dag.test() resumes with the event alone.
    assert not deferred.value.kwargs and event["submission"]["job_ids"] == trigger.job_ids
    emulator_admin.expire_sessions()
    summary = op.execute_complete(context, event=event)
    _check(summary)
    assert summary["processed"] == 10 and len(read_csv(summary["successful_uri"])) == 10


def test_bulk_v1_job_aborted_while_batches_wait_fails_with_every_row_unprocessed(
        conn, hook, emulator_admin, context, tmp_path) -> None:
    bulk_settings(emulator_admin, v1_queued_seconds=2.0)  # batches wait Queued, as on Salesforce
    op = SalesforceBulkIngestOperator(task_id="load", salesforce_conn_id=conn, sobject="Account", api="1.0",
                                      deferrable=True, records=[{"Name": f"Q {i}"} for i in range(25)],
                                      max_records_per_upload=10, results_dir=str(tmp_path / "res"), **FAST)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(_fresh(context))
    submission = deferred.value.trigger.submission
    job_id = submission["job_ids"][0]
    hook.v1_abort_job(job_id)  # someone aborts the job before Salesforce picked the batches up
    assert {b["state"] for b in hook.v1_list_batches(job_id)} == {"NotProcessed"}
    with pytest.raises(SalesforceBulkRecordsFailedError, match="NotProcessed") as failed:
        op.execute_complete(context, event={"status": "success", "submission": submission})
    summary = failed.value.summary
    _check(summary)
    assert (summary["processed"], summary["unprocessed"]) == (0, 25)
    assert [int(r["sf__InputRow"]) for r in read_csv(summary["unprocessed_uri"])] == list(range(1, 26))
    assert count(hook, "SELECT Id FROM Account WHERE Name LIKE 'Q %'") == 0


def test_execute_complete_rejects_bad_events(conn, tmp_path, context) -> None:
    op = _ingest(conn, tmp_path, records=[{"Name": "x"}])
    with pytest.raises(Exception, match="Unexpected event"):
        op.execute_complete(context, event={"status": "weird"}, submission={"job_ids": ["750x"], "api": "2.0"})
    with pytest.raises(Exception, match="Waiting for Bulk job"):
        op.execute_complete(context, event={"status": "error", "message": "boom"},
                            submission={"job_ids": ["750x"], "api": "2.0"})


def test_progress_is_logged(conn, emulator_admin, context, tmp_path, caplog) -> None:
    bulk_settings(emulator_admin, min_in_progress_seconds=0.3)
    caplog.set_level("INFO")
    _ingest(conn, tmp_path, records=[{"Name": "p"}], progress_interval=0.1).execute(_fresh(context))
    lines = [r.getMessage() for r in caplog.records if "rec/s" in r.getMessage()]
    assert len(lines) >= 2 and "records processed" in lines[-1] and "JobComplete" in lines[-1]


# -- query ---------------------------------------------------------------------------------------------------------
def _load(conn, tmp_path, context, n: int) -> None:
    _ingest(conn, tmp_path, records=[{"Name": f"Q {i:03d}", "NumberOfEmployees": i} for i in range(n)],
            results_dir=str(tmp_path / f"load{time.monotonic_ns()}")).execute(_fresh(context))


@pytest.mark.parametrize(("api", "fmt"), [("2.0", "csv"), ("2.0", "parquet"), ("1.0", "jsonl")])
def test_query_to_file(conn, context, tmp_path, api, fmt) -> None:
    _load(conn, tmp_path, context, 120)
    out = tmp_path / f"out.{fmt}"
    op = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, api=api, deferrable=False,
                                     soql="SELECT Id, Name, NumberOfEmployees FROM Account", output_uri=str(out),
                                     field_types={"NumberOfEmployees": "int"}, **FAST)
    summary = op.execute(_fresh(context))
    assert summary["records"] == 120 and summary["format"] == fmt and summary["watermark"] is None
    from airflow_provider_salesforce_suite.io import iter_records

    rows = list(iter_records(str(out)))
    assert len(rows) == 120 and {r["Name"] for r in rows} == {f"Q {i:03d}" for i in range(120)}


def test_query_pk_chunking_and_query_all(conn, hook, context, tmp_path) -> None:
    _load(conn, tmp_path, context, 50)
    victim = hook.request("GET", hook.data_url("query"), params={"q": "SELECT Id FROM Account LIMIT 1"}).json()
    hook.request("DELETE", hook.data_url(f"sobjects/Account/{victim['records'][0]['Id']}"))
    chunked = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, api="1.0", deferrable=False,
                                          soql="SELECT Id, Name FROM Account", pk_chunking={"chunkSize": 20},
                                          output_uri=str(tmp_path / "chunked.csv"), **FAST).execute(_fresh(context))
    assert chunked["records"] == 49 and len(read_csv(tmp_path / "chunked.csv")) == 49
    everything = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, include_deleted=True,
                                             deferrable=False, soql="SELECT Id, IsDeleted FROM Account",
                                             output_uri=str(tmp_path / "all.csv"), **FAST).execute(_fresh(context))
    assert everything["records"] == 50
    with pytest.raises(ValueError, match="pk_chunking is a Bulk API 1.0 option"):
        SalesforceBulkQueryOperator(task_id="x", soql="SELECT Id FROM Account", output_uri="x.csv", pk_chunking=True)


def test_query_bad_soql_fails_with_message(conn, context, tmp_path) -> None:
    op = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, deferrable=False,
                                     soql="SELECT Nope__c FROM Account", output_uri=str(tmp_path / "x.csv"), **FAST)
    with pytest.raises(Exception, match="Nope__c"):
        op.execute(_fresh(context))
    assert not (tmp_path / "x.csv").exists()


def test_query_parallel_pages_write_the_same_file(conn, emulator_admin, context, tmp_path) -> None:
    from tests.hooks.bulk_support import calls

    _load(conn, tmp_path, context, 120)

    def run(name: str, **kwargs) -> dict:
        return SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, deferrable=False,
                                           soql="SELECT Id, Name FROM Account ORDER BY Name", max_records=25,
                                           output_uri=str(tmp_path / name), **FAST, **kwargs).execute(_fresh(context))

    sequential, parallel = run("one.csv"), run("many.csv", max_parallel_pages=3)
    assert parallel["records"] == sequential["records"] == 120
    assert (tmp_path / "many.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert calls(emulator_admin, "GET", f"{parallel['job_id']}/resultPages") == 1
    assert calls(emulator_admin, "GET", f"{parallel['job_id']}/results") == 5
    assert calls(emulator_admin, "GET", f"{sequential['job_id']}/resultPages") == 0
    for bad in (0, -1, 2.5, "3"):
        with pytest.raises(ValueError, match="max_parallel_pages must be an integer >= 1"):
            SalesforceBulkQueryOperator(task_id="x", soql="SELECT Id FROM Account", output_uri="x.csv",
                                        max_parallel_pages=bad)
    with pytest.raises(ValueError, match="Bulk API 2.0 option"):
        SalesforceBulkQueryOperator(task_id="x", soql="SELECT Id FROM Account", output_uri="x.csv", api="1.0",
                                    max_parallel_pages=2)


def test_query_deferrable(conn, context, tmp_path) -> None:
    _load(conn, tmp_path, context, 10)
    op = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, deferrable=True,
                                     soql="SELECT Id, Name FROM Account", output_uri=str(tmp_path / "d.csv"), **FAST)
    try:
        summary = op.execute(_fresh(context))  # the job may already be done at the first check: no deferral needed
    except TaskDeferred as deferred:
        async def first_event():
            async for event in deferred.trigger.run():
                return event.payload

        summary = op.execute_complete(context, event=asyncio.run(first_event()))
    assert summary["records"] == 10


def test_execute_complete_without_a_submission_in_the_event_reads_the_task_state_store(
        conn, emulator_admin, context, tmp_path) -> None:
    """An event without the submission (a trigger serialised by an earlier version): the durable
    submission in the task state store serves; a deferral made with kwargs still resumes too."""
    bulk_settings(emulator_admin, min_in_progress_seconds=0.3)

    def deferred_ingest(state: dict, name: str) -> tuple[SalesforceBulkIngestOperator, dict]:
        op = SalesforceBulkIngestOperator(task_id="load", salesforce_conn_id=conn, sobject="Account",
                                          deferrable=True, records=[{"Name": f"{name} {i}"} for i in range(4)],
                                          results_dir=str(tmp_path / name), **FAST)
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(state)
        return op, deferred.value.trigger.submission

    state = _fresh(context)
    op, submission = deferred_ingest(state, "store")
    assert state["task_state_store"][op.external_id_key] == submission
    summary = op.execute_complete(state, event={"status": "success"})
    assert summary["processed"] == 4 and summary["job_ids"] == submission["job_ids"]
    op, submission = deferred_ingest(_fresh(context), "kwargs")
    summary = op.execute_complete(_fresh(context), event={"status": "success"}, submission=submission)
    assert summary["processed"] == 4 and summary["job_ids"] == submission["job_ids"]
    with pytest.raises(SalesforceBulkError, match="task state store holds none"):
        op.execute_complete(_fresh(context), event={"status": "success"})


# -- submit-only (wait_for_completion=False) ---------------------------------------------------------------------
def test_submit_only_ingest_returns_the_job_ids_for_a_sensor(conn, hook, emulator_admin, context, tmp_path,
                                                             caplog) -> None:
    from airflow_provider_salesforce_suite.sensors.bulk import SalesforceBulkJobSensor

    bulk_settings(emulator_admin, min_in_progress_seconds=0.5)
    state = _fresh(context)
    op = _ingest(conn, tmp_path, records=[{"Name": f"W {i}"} for i in range(30)], max_records_per_upload=10,
                 wait_for_completion=False)
    op.deferrable = True  # submit-only never defers: there is nothing to wait for
    with caplog.at_level(logging.INFO):
        submitted = op.execute(state)  # no deferral, no wait: the jobs are still running
    assert set(submitted) == {"api", "operation", "sobject", "job_ids", "records", "results_dir"}
    assert len(submitted["job_ids"]) == 3 and submitted["records"] == 30
    assert state["ti"].pushed["job_ids"] == submitted["job_ids"]
    assert {hook.get_job(job_id)["state"] for job_id in submitted["job_ids"]} <= {"UploadComplete", "InProgress"}
    assert "results not collected" not in caplog.text
    for job_id in submitted["job_ids"]:
        done = SalesforceBulkJobSensor(task_id="wait", job_id=job_id, salesforce_conn_id=conn, poke_interval=0.1,
                                       timeout=30, deferrable=False).execute(_fresh(context))
        assert done["state"] == "JobComplete" and done["records_processed"] == 10
    # The kept submission lets the result files be written afterwards, by anyone.
    collected = hook.collect_ingest_results(submitted["results_dir"], **FAST)
    assert collected.processed == 30
    # A retry of the submit-only task reconnects to the stored jobs: nothing is loaded twice.
    assert op.execute(state)["job_ids"] == submitted["job_ids"]
    assert count(hook, "SELECT Id FROM Account WHERE Name LIKE 'W %'") == 30


def test_submit_only_query_returns_its_job_id(conn, hook, emulator_admin, context, tmp_path) -> None:
    from airflow_provider_salesforce_suite.sensors.bulk import SalesforceBulkJobSensor

    _load(conn, tmp_path, context, 5)
    bulk_settings(emulator_admin, min_in_progress_seconds=0.3)
    out = tmp_path / "never.csv"
    op = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, soql="SELECT Id FROM Account",
                                     output_uri=str(out), wait_for_completion=False, **FAST)
    submitted = op.execute(_fresh(context))
    assert submitted == {"api": "2.0", "job_ids": [submitted["job_id"]], "job_id": submitted["job_id"],
                         "soql": "SELECT Id FROM Account"}
    assert not out.exists()
    done = SalesforceBulkJobSensor(task_id="wait", job_id=submitted["job_id"], kind="query", salesforce_conn_id=conn,
                                   poke_interval=0.1, timeout=30, deferrable=False).execute(_fresh(context))
    assert done["state"] == "JobComplete" and done["records_processed"] == 5
    with pytest.raises(ValueError, match="wait_for_completion=True"):
        SalesforceBulkQueryOperator(task_id="x", soql="SELECT Id FROM Account", output_uri="x.csv", incremental=True,
                                    wait_for_completion=False)


def test_incremental_extract_keeps_a_watermark_without_gaps(conn, hook, context, tmp_path) -> None:
    asset = Asset("salesforce://accounts")
    _ingest(conn, tmp_path, records=[{"Name": "A"}, {"Name": "C"}], results_dir=str(tmp_path / "l1")).execute(_fresh(context))
    time.sleep(1.1)
    _ingest(conn, tmp_path, records=[{"Name": "B"}], results_dir=str(tmp_path / "l2")).execute(_fresh(context))

    def run(out: str, lookback: float = 0) -> dict:
        op = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, deferrable=False,
                                         soql="SELECT Id, Name FROM Account ORDER BY Name", incremental=True,
                                         lookback=lookback, output_uri=str(tmp_path / out), outlets=[asset], **FAST)
        return op.execute(_fresh(context))

    first = run("1.csv")
    assert first["records"] == 3 and first["watermark"]["previous"] is None
    stored = context["asset_state_store"][asset]["salesforce_bulk_watermark"]
    assert stored["field"] == "SystemModstamp" and stored["value"] == first["watermark"]["new"]
    time.sleep(1.1)
    a_id = next(r["Id"] for r in read_csv(tmp_path / "1.csv") if r["Name"] == "A")
    hook.request("PATCH", hook.data_url(f"sobjects/Account/{a_id}"), json={"Description": "changed"})
    second = run("2.csv")
    # A changed; B sits on the watermark edge and is extracted again (overlap, never a gap); C did not change.
    assert sorted(r["Name"] for r in read_csv(tmp_path / "2.csv")) == ["A", "B"]
    assert "SystemModstamp >= " in second["soql"] and second["watermark"]["new"] > first["watermark"]["new"]
    third = run("3.csv", lookback=3600)
    assert third["records"] == 3  # the lookback window reaches back over everything


def test_incremental_needs_an_asset(conn, context, tmp_path) -> None:
    op = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, soql="SELECT Id FROM Account",
                                     output_uri=str(tmp_path / "x.csv"), incremental=True, deferrable=False)
    with pytest.raises(ValueError, match="outlet Asset"):
        op.execute(_fresh(context))


# -- a job Salesforce purged (7 days after it finished) before the retry --------------------------------------
def _purge(admin, hook: SalesforceBulkHook, job_id: str, api: str) -> None:
    """Salesforce's clean-up: 2.0 through its own DELETE (the job is finished), 1.0 through the emulator's knob."""
    if api == "2.0":
        hook.delete_job(job_id)
    else:
        bulk_settings(admin, purge_job=job_id)


@pytest.mark.parametrize("api", ["2.0", "1.0"])
def test_retry_after_the_stored_job_was_purged_names_it_and_sends_nothing(conn, hook, emulator_admin, context,
                                                                        tmp_path, api) -> None:
    records = [{"Name": f"Purged {i}"} for i in range(20)]
    first = _ingest(conn, tmp_path, records=records, api=api)
    submission = first.submit_job(context)  # submitted and stored; the worker dies while waiting
    context["task_state_store"].set(first.external_id_key, submission)
    job_id = submission["job_ids"][0]
    hook.wait_for_job(job_id, api=api, **FAST)
    _purge(emulator_admin, hook, job_id, api)
    creates = calls(emulator_admin, "POST", "jobs/ingest" if api == "2.0" else "/job")
    with pytest.raises(SalesforceBulkJobPurgedError) as raised:
        _ingest(conn, tmp_path, records=records, api=api).execute(context)
    text = str(raised.value)
    assert raised.value.job_id == job_id and f"Bulk API {api} job {job_id} is gone" in text
    assert "7 days after they finish" in text and "20 input records" in text and "Not submitting again" in text
    assert calls(emulator_admin, "POST", "jobs/ingest" if api == "2.0" else "/job") == creates
    assert count(hook, "SELECT Id FROM Account") == 20


def test_resume_after_a_submitted_job_was_purged_stops_before_sending(conn, hook, emulator_admin, context,
                                                                        tmp_path) -> None:
    records = [{"Name": f"Gone {i:02d}"} for i in range(30)]
    with pytest.raises(Crash):  # rows 1-10 and 11-20 are in two jobs, noted in the journal only
        _ingest(conn, tmp_path, records=CrashAfter(records, 23), max_records_per_upload=10).execute(context)
    first_job = next(job["id"] for job in _ingest_jobs(hook))
    hook.wait_for_job(first_job, **FAST)
    _purge(emulator_admin, hook, first_job, "2.0")
    with pytest.raises(SalesforceBulkJobPurgedError, match=r"input rows 1-10, which an earlier try sent"):
        _ingest(conn, tmp_path, records=records, max_records_per_upload=10).execute(context)
    assert calls(emulator_admin, "PUT", "/batches") == 2  # nothing more sent


@pytest.mark.parametrize(("method", "resent"), [("upload_job_data", True), ("close_job", False)])
def test_purged_pending_job_is_sent_again_only_if_it_never_closed(conn, hook, emulator_admin, context, tmp_path,
                                                                  method, resent) -> None:
    names = [f"Pending {i:02d}" for i in range(30)]
    records = [{"Name": name} for name in names]
    first = _ingest(conn, tmp_path, records=records, max_records_per_upload=10)
    first.hook = _crashing_hook(conn, method, on_call=2)  # dies inside the second upload (rows 11-20)
    with pytest.raises(Crash):
        first.execute(context)
    pending = sorted(job["id"] for job in _ingest_jobs(hook))[-1]
    if not resent:
        hook.wait_for_job(pending, **FAST)
    bulk_settings(emulator_admin, purge_job=pending)
    retry = _ingest(conn, tmp_path, records=records, max_records_per_upload=10)
    if resent:  # its upload never closed: it loaded nothing, so the rows go again in a new job
        summary = retry.execute(context)
        assert (summary["records"], summary["processed"], summary["unprocessed"]) == (30, 30, 0)
        assert count(hook, "SELECT Id FROM Account") == 30 and pending not in summary["job_ids"]
        _rows_once(summary, names)
        return
    with pytest.raises(SalesforceBulkJobPurgedError, match=rf"{pending} is gone.*input rows 11-20"):
        retry.execute(context)
    assert count(hook, "SELECT Id FROM Account") == 20 and calls(emulator_admin, "PUT", "/batches") == 2


def test_collecting_a_purged_job_names_its_rows(conn, hook, emulator_admin, tmp_path) -> None:
    rows = ({"Name": f"Collect {i}"} for i in range(15))
    submitted = hook.ingest("Account", "insert", rows, results_dir=tmp_path / "res", wait=False, resume_key="k",
                            max_records_per_upload=10, **FAST)
    hook.wait_for_job(submitted.job_ids[1], **FAST)
    _purge(emulator_admin, hook, submitted.job_ids[1], "2.0")
    with pytest.raises(SalesforceBulkJobPurgedError, match=r"input rows 11-15, uploaded and closed"):
        hook.collect_ingest_results(str(tmp_path / "res"), **FAST)


def test_purged_query_job_is_run_again(conn, hook, emulator_admin, context, tmp_path) -> None:
    hook.ingest("Account", "insert", [{"Name": "Q1"}, {"Name": "Q2"}], results_dir=tmp_path / "in", **FAST)
    first = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, soql="SELECT Name FROM Account",
                                        output_uri=str(tmp_path / "out.csv"), deferrable=False, **FAST)
    submission = first.submit_job(context)
    context["task_state_store"].set(first.external_id_key, submission)
    old = first._job_ids(submission)[0]
    hook.wait_for_job(old, kind="query", **FAST)
    hook.delete_job(old, kind="query")
    again = SalesforceBulkQueryOperator(task_id="extract", salesforce_conn_id=conn, soql="SELECT Name FROM Account",
                                        output_uri=str(tmp_path / "out.csv"), deferrable=False, **FAST)
    result = again.execute(context)
    assert sorted(r["Name"] for r in read_csv(tmp_path / "out.csv")) == ["Q1", "Q2"]
    assert result is not None
