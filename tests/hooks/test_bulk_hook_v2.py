"""SalesforceBulkHook, Bulk API 2.0 endpoints against the emulator: jobs, uploads, results,
queries, waiting, failures, re-auth, 503s and the async twins."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError, SalesforceNotFoundError
from airflow_provider_salesforce_suite.hooks.bulk import (
    BulkJobState,
    SalesforceBulkHook,
    SalesforceBulkJobFailedError,
    SalesforceBulkTimeoutError,
)
from tests.hooks.bulk_support import FAST, bulk_settings, calls, count

CSV = b"Name,NumberOfEmployees\nAcme,10\nGlobex,20\n,30\n"


def _loaded_job(hook: SalesforceBulkHook, data: bytes = CSV) -> str:
    job = hook.create_ingest_job("Account", "insert")
    assert job["state"] == "Open" and job["object"] == "Account" and job["operation"] == "insert"
    hook.upload_job_data(job["id"], data)
    assert hook.close_job(job["id"])["state"] == "UploadComplete"
    return job["id"]


def test_ingest_job_lifecycle_and_results(sf_conn) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id = _loaded_job(hook)
    progress = []
    info = hook.wait_for_job(job_id, on_progress=progress.append, **FAST)
    assert info["state"] == "JobComplete"
    assert info["numberRecordsProcessed"] == 3 and info["numberRecordsFailed"] == 1
    assert progress[-1].state is BulkJobState.JOB_COMPLETE and progress[-1].records_failed == 1
    assert progress[-1].elapsed >= 0 and progress[-1].rate >= 0
    successful = b"".join(hook.stream_ingest_results(job_id, "successful")).decode()
    failed = b"".join(hook.stream_ingest_results(job_id, "failed")).decode()
    unprocessed = b"".join(hook.stream_ingest_results(job_id, "unprocessed")).decode()
    assert successful.splitlines()[0] == '"sf__Id","sf__Created",Name,NumberOfEmployees' or \
        successful.splitlines()[0].replace('"', "") == "sf__Id,sf__Created,Name,NumberOfEmployees"
    assert len(successful.splitlines()) == 3
    assert "REQUIRED_FIELD_MISSING" in failed and len(failed.splitlines()) == 2
    assert len(unprocessed.splitlines()) <= 1
    assert count(hook, "SELECT Id FROM Account") == 2
    assert any(job["id"] == job_id for job in hook.list_jobs())
    hook.delete_job(job_id)
    with pytest.raises(SalesforceNotFoundError):
        hook.get_job(job_id)


def test_abort_open_job_and_bad_arguments(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job = hook.create_ingest_job("Account", "insert")
    assert hook.abort_job(job["id"])["state"] == "Aborted"
    with pytest.raises(SalesforceBulkJobFailedError) as failed:
        hook.wait_for_job(job["id"], **FAST)
    assert failed.value.state is BulkJobState.ABORTED
    with pytest.raises(ValueError, match="upsert needs external_id_field"):
        hook.create_ingest_job("Account", "upsert")
    with pytest.raises(ValueError, match="operation must be one of"):
        hook.create_ingest_job("Account", "merge")
    with pytest.raises(ValueError, match="kind must be one of"):
        hook.get_job(job["id"], kind="export")
    with pytest.raises(ValueError, match="which must be one of"):
        list(hook.stream_ingest_results(job["id"], "everything"))
    with pytest.raises(SalesforceApiError) as unknown:
        hook.create_ingest_job("NoSuchObject__c", "insert")
    assert unknown.value.status == 400


def test_failed_job_surfaces_error_message(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    bulk_settings(emulator_admin, fail_next_job="InvalidBatch : Failed to process query: boom")
    job_id = _loaded_job(hook)
    with pytest.raises(SalesforceBulkJobFailedError) as failed:
        hook.wait_for_job(job_id, **FAST)
    assert failed.value.state is BulkJobState.FAILED and failed.value.job_id == job_id
    assert "boom" in failed.value.state_message and "boom" in str(failed.value)


def test_unknown_column_fails_the_job_with_its_message(sf_conn) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id = _loaded_job(hook, b"Name,Bogus__c\nAcme,1\n")
    with pytest.raises(SalesforceBulkJobFailedError) as failed:
        hook.wait_for_job(job_id, **FAST)
    assert failed.value.state is BulkJobState.FAILED
    assert "Field name not found : Bogus__c" in failed.value.state_message


def test_wait_timeout_leaves_the_job_running(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    bulk_settings(emulator_admin, min_in_progress_seconds=1.0)
    job_id = _loaded_job(hook)
    with pytest.raises(SalesforceBulkTimeoutError) as timed_out:
        hook.wait_for_job(job_id, poll_interval=0.05, timeout=0.2)
    assert timed_out.value.job_id == job_id and not timed_out.value.state.is_terminal
    assert hook.wait_for_job(job_id, poll_interval=0.1)["state"] == "JobComplete"


def test_polls_start_short_and_grow_to_the_poll_interval(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    bulk_settings(emulator_admin, min_in_progress_seconds=0.3)
    job_id = _loaded_job(hook)
    seen: list[float] = []
    started = time.monotonic()
    info = hook.wait_for_job(job_id, poll_interval=30.0, on_progress=lambda p: seen.append(p.elapsed))
    # waits of 0.5, 1, 2... s: a fixed 30 s interval would have waited 30 s after the first poll
    assert info["state"] == "JobComplete" and time.monotonic() - started < 15
    gaps = [later - earlier for earlier, later in zip(seen, seen[1:])]
    assert gaps and all(0.5 * 2**n <= gap < 0.5 * 2**n + 2 for n, gap in enumerate(gaps)), gaps


def test_session_expiry_mid_job_reauthenticates_and_continues(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job = hook.create_ingest_job("Account", "insert")
    emulator_admin.expire_sessions()
    hook.upload_job_data(job["id"], CSV)
    emulator_admin.expire_sessions()
    hook.close_job(job["id"])
    emulator_admin.expire_sessions()
    assert hook.wait_for_job(job["id"], **FAST)["numberRecordsProcessed"] == 3
    emulator_admin.expire_sessions()
    assert len(b"".join(hook.stream_ingest_results(job["id"], "successful")).splitlines()) == 3


def test_503_during_polling_is_retried(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id = _loaded_job(hook)
    emulator_admin.fault(status=503, error_code="SERVER_UNAVAILABLE", count=2, method="GET",
                         path_prefix=hook.data_url(f"jobs/ingest/{job_id}"))
    assert hook.wait_for_job(job_id, **FAST)["state"] == "JobComplete"
    assert calls(emulator_admin, "GET", f"jobs/ingest/{job_id}") >= 3


def test_query_job_streams_pages_in_order_with_one_header(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    _loaded = _loaded_job(hook, b"Name\n" + b"".join(f"Q{i:04d}\n".encode() for i in range(250)))
    hook.wait_for_job(_loaded, **FAST)
    job = hook.create_query_job("SELECT Name FROM Account ORDER BY Name")
    assert job["operation"] == "query"
    hook.wait_for_job(job["id"], kind="query", **FAST)
    lines = b"".join(hook.stream_query_results(job["id"], max_records=100)).decode().splitlines()
    assert lines[0].replace('"', "") == "Name"
    assert [line.strip('"') for line in lines[1:]] == [f"Q{i:04d}" for i in range(250)]
    assert calls(emulator_admin, "GET", f"jobs/query/{job['id']}/results") == 3
    bulk_settings(emulator_admin, min_in_progress_seconds=5.0)
    all_job = hook.create_query_job("SELECT Name FROM Account", include_deleted=True)
    assert all_job["operation"] == "queryAll"
    assert hook.abort_job(all_job["id"], kind="query")["state"] == "Aborted"
    with pytest.raises(SalesforceBulkJobFailedError):
        hook.wait_for_job(all_job["id"], kind="query", **FAST)
    assert any(j["id"] == job["id"] for j in hook.list_jobs(kind="query"))


def test_malformed_query_job_is_refused(sf_conn) -> None:
    hook = SalesforceBulkHook(sf_conn())
    with pytest.raises(SalesforceApiError):
        hook.create_query_job("SELECT FROM WHERE")


def test_async_twin_get_job(sf_conn, emulator_admin) -> None:
    hook = SalesforceBulkHook(sf_conn())
    job_id = _loaded_job(hook)
    hook.wait_for_job(job_id, **FAST)

    async def run() -> dict:
        emulator_admin.expire_sessions()
        try:
            return await hook.a_get_job(job_id)
        finally:
            await hook.async_session().close()

    info = asyncio.run(run())
    assert info == hook.get_job(job_id)

    async def missing() -> None:
        try:
            await hook.a_get_job("7505E0000009999QAA")
        finally:
            await hook.async_session().close()

    with pytest.raises(SalesforceNotFoundError):
        asyncio.run(missing())
