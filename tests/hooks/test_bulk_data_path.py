"""SalesforceBulkHook.ingest / extract against the emulator: splitting, correlation of results to
input rows, failures, empty and bad input, deferred collection, and flat memory."""

from __future__ import annotations

import gc
import json
import time
import tracemalloc

import pyarrow.parquet as pq
import pytest

from airflow_provider_salesforce_suite.io import CsvTextRows, RecordFileError, iter_records
from airflow_provider_salesforce_suite.hooks.bulk import (
    SalesforceBulkError,
    SalesforceBulkHook,
    SalesforceBulkInputError,
    SalesforceBulkJobFailedError,
)
from tests.hooks.bulk_support import FAST, bulk_settings, calls, count, emulator_process, read_csv


def _records(n: int, bad_every: int = 0, start: int = 0):
    for i in range(start, start + n):
        if bad_every and i % bad_every == bad_every - 1:
            yield {"Name": None, "Description": f"bad {i}"}  # Name is required: a per-record failure
        else:
            yield {"Name": f"Acc {i:06d}", "NumberOfEmployees": i % 500, "Description": f"row {i}"}


def _check_invariant(summary) -> None:
    assert summary.processed + summary.failed + summary.unprocessed == summary.records


def test_25000_records_split_and_correlated_to_inputs(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    summary = hook.ingest("Account", "insert", _records(25_000, bad_every=1000), results_dir=tmp_path / "res",
                          max_upload_bytes=300_000, max_concurrent_jobs=3, **FAST)
    _check_invariant(summary)
    assert summary.records == 25_000 and summary.failed == 25 and summary.processed == 24_975
    assert len(summary.job_ids) >= 3 and calls(emulator_admin, "PUT", "/batches") == len(summary.job_ids)
    successful = read_csv(summary.successful_uri)
    failed = read_csv(summary.failed_uri)
    assert read_csv(summary.unprocessed_uri) == []
    # Every result row carries its input row: 1-based position, in input order, the input's values.
    assert [int(r["sf__InputRow"]) for r in successful] == [i + 1 for i in range(25_000) if i % 1000 != 999]
    assert all(r["Name"] == f"Acc {int(r['sf__InputRow']) - 1:06d}" for r in successful)
    assert all(r["sf__Created"] == "true" and r["sf__Id"].startswith("001") for r in successful)
    assert [int(r["sf__InputRow"]) for r in failed] == [i + 1 for i in range(999, 25_000, 1000)]
    assert all(r["sf__Error"].startswith("REQUIRED_FIELD_MISSING") and r["sf__Id"] == "" for r in failed)
    assert all(r["Description"] == f"bad {int(r['sf__InputRow']) - 1}" for r in failed)
    # The ids are the records Salesforce created for those very inputs.
    sample = successful[12_345]
    created = hook.request("GET", hook.data_url(f"sobjects/Account/{sample['sf__Id']}")).json()
    assert created["Name"] == sample["Name"]
    assert count(hook, "SELECT Id FROM Account") == 24_975


def test_identical_rows_and_growing_columns(sf_conn, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    rows = [{"Name": "Same"}, {"Name": "Same"}, {"Name": "Other", "Phone": "1"}, {"Name": "Same"}, {"Phone": "2"}]
    summary = hook.ingest("Account", "insert", rows, results_dir=tmp_path, results_format="jsonl", **FAST)
    _check_invariant(summary)
    assert (summary.records, summary.processed, summary.failed) == (5, 4, 1)
    # A record with a new key starts an upload whose header adds it.
    assert len(summary.job_ids) == 2
    with open(summary.successful_uri) as handle:
        successful = [json.loads(line) for line in handle]
    assert [r["sf__InputRow"] for r in successful] == [1, 2, 3, 4]
    assert len({r["sf__Id"] for r in successful}) == 4
    with open(summary.failed_uri) as handle:
        assert [json.loads(line)["sf__InputRow"] for line in handle] == [5]


@pytest.mark.parametrize("api", ["2.0", "1.0"])
def test_csv_rows_are_sent_as_read(sf_conn, emulator_admin, tmp_path, api) -> None:
    source = tmp_path / "in.csv"
    source.write_text('Name,Phone,Description\n"Comma, Inc",,"two\nlines"\nNulled,555,#N/A\n'
                      + "".join(f"Row {i},{i},d{i}\n" for i in range(7)), encoding="utf-8")
    hook = SalesforceBulkHook(sf_conn())
    delimiter = {"column_delimiter": "TAB"} if api == "2.0" else {}
    summary = hook.ingest("Account", "insert", CsvTextRows(source), api=api, results_dir=tmp_path / "res",
                          max_records_per_upload=4, **delimiter, **FAST)
    _check_invariant(summary)
    assert (summary.records, summary.processed) == (9, 9)
    # One header for the whole file: an empty cell in the first row does not split the uploads.
    uploads = calls(emulator_admin, "PUT", "/batches") if api == "2.0" else calls(emulator_admin, "POST", "/batch")
    assert uploads == 3
    successful = read_csv(summary.successful_uri)
    assert [int(r["sf__InputRow"]) for r in successful] == list(range(1, 10))
    assert successful[0]["Description"] == "two\nlines" and successful[0]["Phone"] == ""
    first = hook.request("GET", hook.data_url(f"sobjects/Account/{successful[0]['sf__Id']}")).json()
    assert (first["Name"], first["Phone"], first["Description"]) == ("Comma, Inc", None, "two\nlines")
    nulled = hook.request("GET", hook.data_url(f"sobjects/Account/{successful[1]['sf__Id']}")).json()
    assert (nulled["Phone"], nulled["Description"]) == ("555", None)


def test_results_in_any_order_are_tied_to_their_input_rows(sf_conn, emulator_admin, tmp_path) -> None:
    # Salesforce does not return Bulk 2.0 results in input order: the emulator lists them last first.
    bulk_settings(emulator_admin, reverse_results=True)
    rows = [*_records(30, bad_every=7), {"Name": "Twin"}, {"Name": "Twin"}]
    hook = SalesforceBulkHook(sf_conn())
    summary = hook.ingest("Account", "insert", rows, results_dir=tmp_path, max_records_per_upload=16, **FAST)
    _check_invariant(summary)
    assert (summary.records, summary.processed, summary.failed, summary.unprocessed) == (32, 28, 4, 0)
    successful, failed = read_csv(summary.successful_uri), read_csv(summary.failed_uri)
    # each upload's rows come in Salesforce's (here: reversed) order, uploads in input order
    numbers = [int(r["sf__InputRow"]) for r in successful]
    assert numbers[:14] == sorted(numbers[:14], reverse=True) and max(numbers[:14]) < min(numbers[14:])
    assert sorted(numbers) == [n for n in range(1, 33) if n % 7 != 0]
    for row in (r for r in successful if r["Name"] != "Twin"):
        assert row["Name"] == f"Acc {int(row['sf__InputRow']) - 1:06d}"
        created = hook.request("GET", hook.data_url(f"sobjects/Account/{row['sf__Id']}")).json()
        assert created["Description"] == row["Description"] == f"row {int(row['sf__InputRow']) - 1}"
    # identical input rows are interchangeable, but each is reported once
    twins = [r for r in successful if r["Name"] == "Twin"]
    assert sorted(int(r["sf__InputRow"]) for r in twins) == [31, 32] and len({r["sf__Id"] for r in twins}) == 2
    assert sorted(int(r["sf__InputRow"]) for r in failed) == [7, 14, 21, 28]
    assert all(r["Description"] == f"bad {int(r['sf__InputRow']) - 1}" for r in failed)


def test_submission_keeps_at_most_max_concurrent_jobs_unfinished(sf_conn, emulator_admin, tmp_path) -> None:
    bulk_settings(emulator_admin, min_in_progress_seconds=0.4)
    hook = SalesforceBulkHook(sf_conn())
    submitted = hook.ingest("Account", "insert", _records(9), results_dir=tmp_path, wait=False,
                            max_records_per_upload=3, max_concurrent_jobs=1, poll_interval=0.05)
    # each upload waited for the job before it: only the last one can still be running
    states = [hook.get_job(job_id)["state"] for job_id in submitted.job_ids]
    assert len(states) == 3 and states[:2] == ["JobComplete", "JobComplete"], states
    summary = hook.collect_ingest_results(tmp_path, poll_interval=0.05)
    assert (summary.records, summary.processed) == (9, 9)
    # without a bound every upload goes in at once: the first job is still running when it returns
    unbounded = hook.ingest("Account", "insert", _records(9), results_dir=tmp_path / "free", wait=False,
                            max_records_per_upload=3, poll_interval=0.05)
    assert hook.get_job(unbounded.job_ids[0])["state"] != "JobComplete"
    with pytest.raises(ValueError, match="max_concurrent_jobs must be at least 1"):
        hook.ingest("Account", "insert", _records(1), results_dir=tmp_path / "x", max_concurrent_jobs=0)


def test_bulk_v1_ingest_in_batches_correlated_in_order(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    summary = hook.ingest("Account", "insert", _records(2_500, bad_every=500), api="1.0",
                          results_dir=tmp_path, max_records_per_upload=1000, **FAST)
    _check_invariant(summary)
    assert len(summary.job_ids) == 1 and (summary.processed, summary.failed) == (2_495, 5)
    assert calls(emulator_admin, "POST", f"/job/{summary.job_ids[0]}/batch") == 3
    failed = read_csv(summary.failed_uri)
    assert [int(r["sf__InputRow"]) for r in failed] == [500, 1000, 1500, 2000, 2500]
    assert all(r["sf__Error"] for r in failed)
    assert hook.v1_get_job(summary.job_ids[0])["state"] == "Closed"


def test_failed_job_stops_sending_and_reports_everything(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    bulk_settings(emulator_admin, fail_next_job="InvalidBatch : something broke")
    with pytest.raises(SalesforceBulkJobFailedError) as failed:
        hook.ingest("Account", "insert", _records(3_000), results_dir=tmp_path, max_records_per_upload=1000,
                    max_concurrent_jobs=1, **FAST)
    summary = failed.value.summary
    assert "something broke" in failed.value.state_message
    _check_invariant(summary)
    assert summary.records == 3_000 and summary.unprocessed == 3_000 and len(summary.job_ids) == 1
    assert [int(r["sf__InputRow"]) for r in read_csv(summary.unprocessed_uri)] == list(range(1, 3_001))
    assert count(hook, "SELECT Id FROM Account") == 0


def test_unknown_column_surfaces_the_job_error(sf_conn, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    with pytest.raises(SalesforceBulkJobFailedError, match="Field name not found : Bogus__c") as failed:
        hook.ingest("Account", "insert", [{"Name": "A", "Bogus__c": "x"}], results_dir=tmp_path, **FAST)
    assert failed.value.summary.unprocessed == 1
    summary = hook.ingest("Account", "insert", [{"Name": "A", "Bogus__c": "x"}], results_dir=tmp_path,
                          raise_on_failure=False, **FAST)
    assert (summary.records, summary.unprocessed) == (1, 1)


def test_ragged_input_file_is_refused_before_any_job(sf_conn, emulator_admin, tmp_path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("Name,Phone\nA,1\nB,2,3\n")
    hook = SalesforceBulkHook(sf_conn())
    with pytest.raises(RecordFileError, match="line 3"):
        hook.ingest("Account", "insert", iter_records(source), results_dir=tmp_path / "res", **FAST)
    assert calls(emulator_admin, "POST", "jobs/ingest") == 0


def test_empty_input_creates_no_job(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    for api in ("2.0", "1.0"):
        summary = hook.ingest("Account", "insert", iter(()), api=api, results_dir=tmp_path / api, **FAST)
        assert summary.job_ids == [] and summary.records == summary.processed == summary.failed == 0
        assert read_csv(summary.successful_uri) == []
    assert calls(emulator_admin, "POST", "jobs/ingest") == 0 and calls(emulator_admin, "POST", "/services/async") == 0


def test_bad_arguments_are_refused_before_reading_input(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())

    def never():
        raise AssertionError("input read")
        yield {}

    bad = [
        ({"max_upload_bytes": 200 * 1024 * 1024}, "max_upload_bytes"),
        ({"api": "1.0", "max_records_per_upload": 20_000}, "max_records_per_upload"),
        ({"api": "1.0", "column_delimiter": "TAB"}, "COMMA"),
        ({"max_concurrent_jobs": 0}, "max_concurrent_jobs"),
        ({"api": "3.0"}, "api must be"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            hook.ingest("Account", "insert", never(), results_dir=tmp_path, **kwargs)
    with pytest.raises(ValueError, match="upsert needs external_id_field"):
        hook.ingest("Account", "upsert", never(), results_dir=tmp_path)
    with pytest.raises(ValueError, match="upload limit"):
        hook.ingest("Account", "insert", [{"Name": "x" * 500}], results_dir=tmp_path, max_upload_bytes=100)
    with pytest.raises(ValueError, match="not a mapping"):
        hook.ingest("Account", "insert", ["Name"], results_dir=tmp_path)
    assert calls(emulator_admin, "POST", "jobs/ingest") == 0


def test_deferred_collection(sf_conn, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    submitted = hook.ingest("Account", "insert", _records(1_200, bad_every=600), results_dir=tmp_path,
                            max_records_per_upload=500, wait=False)
    assert submitted.records == 1_200 and len(submitted.job_ids) == 3 and submitted.successful_uri is None
    for job_id in submitted.job_ids:
        hook.wait_for_job(job_id, **FAST)
    # a local results_dir: the spills were written straight into _chunks (no temporary copy), beside
    # the submission's progress notes and its manifest
    kept = sorted(p.name for p in (tmp_path / "_chunks").iterdir())
    assert [name for name in kept if name.endswith(".csv")] == ["chunk-00000.csv", "chunk-00001.csv",
                                                                "chunk-00002.csv"]
    assert "manifest.json" in kept and "submission.json" in kept and not any(n.endswith(".tmp") for n in kept)
    summary = hook.collect_ingest_results(tmp_path, **FAST)
    _check_invariant(summary)
    assert (summary.records, summary.processed, summary.failed) == (1_200, 1_198, 2)
    assert [int(r["sf__InputRow"]) for r in read_csv(summary.failed_uri)] == [600, 1200]
    # collection reads the kept spills in place and leaves them: a crashed collection can run again
    assert sorted(p.name for p in (tmp_path / "_chunks").iterdir()) == kept
    again = hook.collect_ingest_results(tmp_path, results_format="jsonl", **FAST)
    assert (again.records, again.processed, again.failed) == (1_200, 1_198, 2)
    assert [r["sf__InputRow"] for r in iter_records(again.failed_uri)] == [600, 1200]


def test_deferred_collection_on_remote_storage(sf_conn, tmp_path) -> None:
    from airflow.sdk.io.store import attach
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow_provider_salesforce_suite.io import to_path

    attach(protocol="memory", fs=MemoryFileSystem())  # a remote store without a network
    hook = SalesforceBulkHook(sf_conn())
    remote = f"memory://bulk-deferred/{tmp_path.name}"
    submitted = hook.ingest("Account", "insert", _records(700, bad_every=350), results_dir=remote,
                            max_records_per_upload=400, wait=False)
    kept = to_path(remote) / "_chunks"
    names = sorted(p.name for p in kept.iterdir())
    assert [n for n in names if n.endswith(".csv")] == ["chunk-00000.csv", "chunk-00001.csv"]
    assert "manifest.json" in names
    for _ in range(2):  # copied to a local temporary file per chunk; the kept copies stay for a re-run
        summary = hook.collect_ingest_results(remote, **FAST)
        assert (summary.records, summary.processed, summary.failed) == (700, 698, 2)
        assert sorted(p.name for p in kept.iterdir()) == names
    failed = list(iter_records(summary.failed_uri))
    assert summary.failed_uri.startswith("memory://") and [r["sf__InputRow"] for r in failed] == ["350", "700"]
    assert len(set(submitted.job_ids)) == 2


def _paced(records, before: dict):
    """``records``, calling ``before[n]()`` before record ``n`` (1-based) is handed out."""
    for number, record in enumerate(records, start=1):
        if number in before:
            before[number]()
        yield record


def _bad_file(path, good_rows: int, bad_line: str = "Broken,x,extra"):
    with open(path, "w") as handle:
        handle.write("Name,Description\n")
        handle.writelines(f"Acc {i:06d},row {i}\n" for i in range(good_rows))
        handle.write(bad_line + "\n")
    return path


@pytest.mark.parametrize("api", ["2.0", "1.0"])
def test_bad_input_partway_aborts_unfinished_jobs_and_lists_them(sf_conn, emulator_admin, tmp_path, api) -> None:
    hook = SalesforceBulkHook(sf_conn())
    source = _bad_file(tmp_path / "in.csv", 21)  # the ragged row is file line 23

    def first_upload_done_then_slow() -> None:  # rows 1-10 are in and loaded; the next upload stays running
        deadline = time.monotonic() + 10
        while count(hook, "SELECT Id FROM Account") < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        bulk_settings(emulator_admin, min_in_progress_seconds=5)

    records = _paced(iter_records(source), {12: first_upload_done_then_slow})
    with pytest.raises(SalesforceBulkInputError, match="line 23") as raised:
        hook.ingest("Account", "insert", records, api=api, results_dir=tmp_path / "res", max_records_per_upload=10,
                    max_concurrent_jobs=3, **FAST)
    error = raised.value
    assert isinstance(error, RecordFileError) and error.records_submitted == 20
    text = str(error)
    assert "rows 1-20" in text and all(job.job_id in text for job in error.jobs)
    if api == "2.0":
        done, stopped = error.jobs
        assert (done.state, done.aborted, done.records, done.processed) == ("JobComplete", False, 10, 10)
        assert (stopped.state, stopped.aborted, stopped.was, stopped.records) == ("Aborted", True, "InProgress", 10)
        assert "JobComplete, 10 processed (0 rejected) - already loaded, cannot be undone" in text
        assert hook.get_job(stopped.job_id)["state"] == "Aborted"
    else:
        (job,) = error.jobs
        assert (job.state, job.was, job.aborted, job.records) == ("Aborted", "Open", True, 20)
        assert job.batches and job.batches.get("Completed") >= 1 and "Aborted by this stop (was Open)" in text
        assert hook.v1_get_job(job.job_id)["state"] == "Aborted"
    assert "retry" not in text  # nothing to resume without a resume_key


def test_resume_key_at_the_hook(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    args = {"results_dir": tmp_path, "max_records_per_upload": 100, "wait": False}

    def crash_at(n: int):
        def crash() -> None:
            raise KeyboardInterrupt  # a BaseException: the worker is gone, no clean-up runs
        return {n: crash}

    with pytest.raises(KeyboardInterrupt):
        hook.ingest("Account", "insert", _paced(_records(450), crash_at(260)), resume_key="k", **args)
    # An input that ends before what was submitted is refused; so is a job that is someone else's.
    with pytest.raises(SalesforceBulkError, match="now has 100 records, but 200 were already submitted"):
        hook.ingest("Account", "insert", _records(100), resume_key="k", **args)
    with pytest.raises(SalesforceBulkError, match="unfinished submission of 'k', not of 'other'"):
        hook.ingest("Account", "insert", _records(450), resume_key="other", **args)
    assert calls(emulator_admin, "PUT", "/batches") == 2
    resumed = hook.ingest("Account", "insert", _records(450), resume_key="k", **args)
    assert resumed.records == 450 and len(resumed.job_ids) == 5 and calls(emulator_admin, "PUT", "/batches") == 5
    # A finished submission is returned as it is, without reading the input.
    again = hook.ingest("Account", "insert", iter(()), resume_key="k", **args)
    assert (again.job_ids, again.records) == (resumed.job_ids, 450)
    assert calls(emulator_admin, "POST", "jobs/ingest") == 5
    summary = hook.collect_ingest_results(tmp_path, **FAST)
    _check_invariant(summary)
    assert (summary.records, summary.processed) == (450, 450) and count(hook, "SELECT Id FROM Account") == 450
    assert [int(r["sf__InputRow"]) for r in read_csv(summary.successful_uri)] == list(range(1, 451))
    # Without a key the progress is dropped and everything is sent afresh (the caller asked for it).
    fresh = hook.ingest("Account", "insert", _records(450, start=450), **args)
    assert len(set(fresh.job_ids) & set(resumed.job_ids)) == 0 and calls(emulator_admin, "PUT", "/batches") == 10


def test_resume_on_remote_storage(sf_conn, emulator_admin, tmp_path) -> None:
    from airflow.sdk.io.store import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach(protocol="memory", fs=MemoryFileSystem())
    hook = SalesforceBulkHook(sf_conn())
    remote = f"memory://bulk-resume/{tmp_path.name}"
    args = {"results_dir": remote, "max_records_per_upload": 100, "wait": False, "api": "1.0", "resume_key": "k"}

    def die() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hook.ingest("Account", "insert", _paced(_records(350, bad_every=175), {230: die}), **args)
    submitted = hook.ingest("Account", "insert", _records(350, bad_every=175), **args)
    assert submitted.records == 350 and len(submitted.job_ids) == 1
    assert calls(emulator_admin, "POST", f"/job/{submitted.job_ids[0]}/batch") == 4
    summary = hook.collect_ingest_results(remote, **FAST)
    _check_invariant(summary)
    assert (summary.records, summary.processed, summary.failed) == (350, 348, 2)
    assert [r["sf__InputRow"] for r in iter_records(summary.failed_uri)] == ["175", "350"]


@pytest.mark.parametrize("api", ["2.0", "1.0"])
def test_extract_to_csv_jsonl_parquet(sf_conn, tmp_path, api) -> None:
    hook = SalesforceBulkHook(sf_conn())
    hook.ingest("Account", "insert", _records(1_500), results_dir=tmp_path / "load", **FAST)
    soql = "SELECT Id, Name, NumberOfEmployees FROM Account ORDER BY Name"
    csv_summary = hook.extract(soql, tmp_path / "out.csv", api=api, max_records=400 if api == "2.0" else None, **FAST)
    assert (csv_summary.records, csv_summary.format) == (1_500, "csv")
    rows = read_csv(tmp_path / "out.csv")
    assert [r["Name"] for r in rows] == [f"Acc {i:06d}" for i in range(1_500)]
    jsonl = hook.extract(soql, tmp_path / "out.jsonl.gz", api=api, **FAST)
    import gzip

    with gzip.open(tmp_path / "out.jsonl.gz", "rt") as handle:
        lines = [json.loads(line) for line in handle]
    assert jsonl.records == 1_500 and [r["Name"] for r in lines] == [r["Name"] for r in rows]
    parquet = hook.extract(soql, tmp_path / "out.parquet", api=api, field_types={"NumberOfEmployees": "int"}, **FAST)
    table = pq.read_table(tmp_path / "out.parquet")
    assert parquet.records == 1_500 and table.column_names == ["Id", "Name", "NumberOfEmployees"]
    assert table.column("NumberOfEmployees").to_pylist()[:3] == [0, 1, 2]


def test_extract_bulk_v1_pk_chunking_concatenates_chunks(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    hook.ingest("Account", "insert", _records(2_300), results_dir=tmp_path / "load", **FAST)
    summary = hook.extract("SELECT Id, Name FROM Account", tmp_path / "pk.csv", api="1.0",
                           pk_chunking={"chunkSize": 1000}, **FAST)
    rows = read_csv(tmp_path / "pk.csv")
    assert summary.records == len(rows) == 2_300
    assert sorted(r["Name"] for r in rows) == [f"Acc {i:06d}" for i in range(2_300)]
    batches = hook.v1_list_batches(summary.job_id)
    assert {b["state"] for b in batches} == {"NotProcessed", "Completed"} and len(batches) == 4


def test_extract_failures(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    bulk_settings(emulator_admin, fail_next_job="InvalidBatch : query failed")
    with pytest.raises(SalesforceBulkJobFailedError, match="query failed"):
        hook.extract("SELECT Id FROM Account", tmp_path / "x.csv", **FAST)
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(ValueError, match="pk_chunking"):
        hook.extract("SELECT Id FROM Account", tmp_path / "x.csv", pk_chunking=True)
    with pytest.raises(RecordFileError):
        hook.extract("SELECT Id FROM Account", tmp_path / "x.txt")


def test_write_query_results_of_jobs_run_elsewhere(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    hook.ingest("Account", "insert", _records(1_200), results_dir=tmp_path / "load", **FAST)
    job_id = hook.create_query_job("SELECT Name FROM Account ORDER BY Name")["id"]
    hook.wait_for_job(job_id, kind="query", **FAST)
    summary = hook.write_query_results(job_id, tmp_path / "v2.jsonl", max_records=500)
    assert (summary.job_id, summary.records, summary.format) == (job_id, 1_200, "jsonl")
    assert [r["Name"] for r in iter_records(tmp_path / "v2.jsonl")] == [f"Acc {i:06d}" for i in range(1_200)]
    # 1.0 with PK chunking: the job is still Open (closed first); batch_ids picks chunk batches
    job_id = hook.v1_create_job("Account", "query", pk_chunking={"chunkSize": 500})["id"]
    hook.v1_add_batch(job_id, b"SELECT Name FROM Account")
    hook.wait_for_job(job_id, api="1.0", **FAST)
    chunks = [b["id"] for b in hook.v1_list_batches(job_id) if b["state"] == "Completed"]
    first = hook.write_query_results(job_id, tmp_path / "first.csv", api="1.0", batch_ids=chunks[:1])
    assert first.records == len(read_csv(tmp_path / "first.csv")) == 500
    assert hook.v1_get_job(job_id)["state"] == "Closed"
    every = hook.write_query_results(job_id, tmp_path / "all.csv", api="1.0")
    assert every.records == 1_200 and len({r["Name"] for r in read_csv(tmp_path / "all.csv")}) == 1_200
    with pytest.raises(ValueError, match="not batches of job"):
        hook.write_query_results(job_id, tmp_path / "x.csv", api="1.0", batch_ids=["751000000000000AAA"])
    with pytest.raises(ValueError, match="batch_ids are Bulk API 1.0"):
        hook.write_query_results(job_id, tmp_path / "x.csv", batch_ids=chunks)
    with pytest.raises(ValueError, match="api"):
        hook.write_query_results(job_id, tmp_path / "x.csv", api="3.0")
    with pytest.raises(RecordFileError):
        hook.write_query_results(job_id, tmp_path / "x.txt", api="1.0")
    bulk_settings(emulator_admin, fail_next_job="InvalidBatch : query failed")
    failed = hook.create_query_job("SELECT Id FROM Account")["id"]
    with pytest.raises(SalesforceBulkJobFailedError):
        hook.wait_for_job(failed, kind="query", **FAST)
    with pytest.raises(SalesforceBulkJobFailedError, match="query failed"):
        hook.write_query_results(failed, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def _peak(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_flat_in_the_number_of_records(tmp_path, monkeypatch) -> None:
    # The emulator runs in another process: tracemalloc then sees only the hook's allocations.
    with emulator_process(str(tmp_path / "tls")) as connection:
        monkeypatch.setenv("AIRFLOW_CONN_SF_MEMORY", connection)
        hook = SalesforceBulkHook("sf_memory")
        limits = {"max_upload_bytes": 400_000, "max_records_per_upload": 5_000, "max_concurrent_jobs": 2}

        def load(n: int, start: int) -> None:
            summary = hook.ingest("Account", "insert", _records(n, start=start), results_dir=tmp_path / f"r{n}",
                                  **limits, **FAST)
            assert summary.processed == n

        def dump(n: int) -> None:
            summary = hook.extract("SELECT Id, Name, Description FROM Account", tmp_path / f"e{n}.jsonl",
                                   max_records=5_000, **FAST)
            assert summary.records == n

        # 5x the records (several uploads, several result pages) must not move the peak.
        small = _peak(lambda: load(10_000, 0))
        dump_small = _peak(lambda: dump(10_000))
        large = _peak(lambda: load(40_000, 10_000))
        dump_large = _peak(lambda: dump(50_000))
    assert large < small * 1.3 + 1_000_000, (small, large)
    assert dump_large < dump_small * 1.3 + 1_000_000, (dump_small, dump_large)


@pytest.mark.parametrize("reverse", [False, True])
def test_csv_file_windows_match_row_by_row(sf_conn, emulator_admin, tmp_path, monkeypatch, reverse) -> None:
    """A CSV file read, cut and correlated a window at a time (plain lines as bytes, quoted or
    blank lines with csv, results in or out of upload order) gives the result files row by row
    reading would: every input row once, with its values and position, quoted where csv quotes."""
    import csv
    import io

    from airflow_provider_salesforce_suite.io import csvwindows

    monkeypatch.setattr(csvwindows, "WINDOW_BYTES", 700)  # many windows: edges inside chunks and rows
    bulk_settings(emulator_admin, reverse_results=reverse)
    rows = []
    for i in range(1200):
        name = "" if i % 97 == 5 else f"Acc {i:05d}"  # no Name: a failed record
        description = f'say "{i}", twice\nover' if i in (3, 260) else f"row {i}"  # quotes and a line break (chunk 1 only)
        rows.append([name, str(i % 40), description])
    rows.append(["Twin", "1", "same"])
    rows.append(["Twin", "1", "same"])
    source = tmp_path / "in.csv"
    with open(source, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)  # CRLF lines, as Python's csv writes by default
        writer.writerow(["Name", "NumberOfEmployees", "Description"])
        writer.writerows(rows[:600])
        handle.write("\r\n")  # a blank line: skipped
        writer.writerows(rows[600:])
    hook = SalesforceBulkHook(sf_conn())
    summary = hook.ingest("Account", "insert", CsvTextRows(source), results_dir=tmp_path / "res",
                          max_records_per_upload=500, **FAST)
    _check_invariant(summary)
    failures = sum(1 for row in rows if not row[0])
    assert (summary.records, summary.failed, summary.unprocessed) == (len(rows), failures, 0)
    seen = {}
    for uri in (summary.successful_uri, summary.failed_uri):
        with open(uri, "rb") as handle:
            data = handle.read()
        parsed = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        again = io.StringIO()
        csv.writer(again, lineterminator="\n").writerows(parsed)
        assert again.getvalue().encode("utf-8") == data  # written as csv writes it
        header = parsed[0]
        for line in parsed[1:]:
            record = dict(zip(header, line))
            number = int(record["sf__InputRow"])
            assert number not in seen
            seen[number] = [record["Name"], record["NumberOfEmployees"], record["Description"]]
    assert seen == {n + 1: row for n, row in enumerate(rows)}
    numbers = [int(r["sf__InputRow"]) for r in read_csv(summary.successful_uri)[:400]]
    assert numbers == sorted(numbers, reverse=reverse)
