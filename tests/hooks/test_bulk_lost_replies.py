"""Bulk 2.0 ingest when Salesforce committed a write and its reply never arrived: job creation,
the upload and the close. Salesforce takes one upload per job, so an upload is never replayed
into the same job; every input row is loaded exactly once."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
from tests.hooks.bulk_support import FAST, calls, count, read_csv

V2 = "/services/data/v64.0/jobs/ingest"


def _rows(n: int):
    return ({"Name": f"Lost {i:04d}", "Description": f"row {i}"} for i in range(n))


def _ingest(hook: SalesforceBulkHook, tmp_path, **kwargs):
    return hook.ingest("Account", "insert", _rows(300), results_dir=tmp_path / "res", max_records_per_upload=100,
                       **FAST, **kwargs)


def _loaded_once(hook: SalesforceBulkHook) -> None:
    assert count(hook, "SELECT Id FROM Account WHERE Name LIKE 'Lost %'") == 300
    names = hook.request("GET", hook.data_url("query"),
                         params={"q": "SELECT Name FROM Account WHERE Name LIKE 'Lost %'"}).json()["records"]
    assert len({r["Name"] for r in names}) == 300


@pytest.mark.parametrize("rule", [
    pytest.param({"method": "POST", "path_prefix": V2}, id="create"),
    pytest.param({"method": "PUT", "path_prefix": V2}, id="upload"),
    pytest.param({"method": "PATCH", "path_prefix": V2}, id="close"),
])
def test_lost_reply_loads_each_row_once(sf_conn, emulator_admin, tmp_path, rule) -> None:
    hook = SalesforceBulkHook(sf_conn())
    emulator_admin.fault(lose_reply=True, count=1, **rule)
    summary = _ingest(hook, tmp_path)
    assert (summary.records, summary.processed, summary.failed, summary.unprocessed) == (300, 300, 0, 0)
    assert emulator_admin.stats()["connections_dropped"] == 1
    _loaded_once(hook)
    # Only the jobs that loaded are reported; an upload is never sent twice into one job.
    assert len(summary.job_ids) == 3
    assert calls(emulator_admin, "PUT", "/batches") == 3 + (rule["method"] == "PUT")
    states = {hook.get_job(job_id)["state"] for job_id in summary.job_ids}
    assert states == {"JobComplete"}


def test_lost_upload_reply_aborts_that_job(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    emulator_admin.fault(lose_reply=True, count=1, method="PUT", path_prefix=V2)
    summary = _ingest(hook, tmp_path)
    jobs = hook.request("GET", hook.data_url("jobs/ingest")).json()["records"]
    aborted = [job["id"] for job in jobs if job["state"] == "Aborted"]
    assert len(aborted) == 1 and aborted[0] not in summary.job_ids


def test_lost_upload_reply_in_a_deferred_submission(sf_conn, emulator_admin, tmp_path) -> None:
    """The submit-then-collect path (operators that defer) notes the replacement job, not the aborted one."""
    hook = SalesforceBulkHook(sf_conn())
    emulator_admin.fault(lose_reply=True, count=1, method="PUT", path_prefix=V2)
    submitted = hook.ingest("Account", "insert", _rows(300), results_dir=tmp_path / "res",
                            max_records_per_upload=100, wait=False, resume_key="dag/run/task", **FAST)
    summary = hook.collect_ingest_results(str(tmp_path / "res"), **FAST)
    assert summary.job_ids == submitted.job_ids
    assert (summary.records, summary.processed) == (300, 300)
    _loaded_once(hook)


def test_uploads_keep_failing_gives_up_loading_nothing_twice(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    emulator_admin.fault(lose_reply=True, count=3, method="PUT", path_prefix=V2)
    with pytest.raises(Exception, match="lost its reply 3 times"):
        _ingest(hook, tmp_path)
    assert count(hook, "SELECT Id FROM Account WHERE Name LIKE 'Lost %'") == 0


CONCURRENT = "ConcurrentPerOrgLongTxn Limit exceeded: too many concurrent requests"


def test_bulk1_concurrent_limit_clears_by_retrying(sf_conn, emulator_admin) -> None:
    """Bulk 1.0 words an API limit as ExceededQuota; the concurrent-requests one clears by itself."""
    hook = SalesforceBulkHook(sf_conn())
    job = hook.v1_create_job("Account", "insert")
    emulator_admin.fault(error_code="REQUEST_LIMIT_EXCEEDED", message=CONCURRENT, method="GET",
                         path_prefix="/services/async/", count=1)
    assert hook.v1_get_job(job["id"])["id"] == job["id"]
    assert emulator_admin.stats()["faults_injected"] == 1


def test_bulk1_daily_limit_is_not_retried(sf_conn, emulator_admin) -> None:
    from airflow_provider_salesforce_suite.core.errors import SalesforceRequestLimitError

    hook = SalesforceBulkHook(sf_conn())
    job = hook.v1_create_job("Account", "insert")
    emulator_admin.fault(error_code="REQUEST_LIMIT_EXCEEDED", method="GET", path_prefix="/services/async/", count=2)
    with pytest.raises(SalesforceRequestLimitError, match="ExceededQuota"):
        hook.v1_get_job(job["id"])
    assert emulator_admin.stats()["faults_injected"] == 1


def test_bulk1_lost_batch_reply_adopts_the_batch(sf_conn, emulator_admin, tmp_path) -> None:
    hook = SalesforceBulkHook(sf_conn())
    # "/job/" (not "/job"): the POSTs under it add batches; job creation posts to ".../job".
    emulator_admin.fault(lose_reply=True, count=1, method="POST", path_prefix="/services/async/64.0/job/")
    summary = _ingest(hook, tmp_path, api="1.0")
    assert (summary.records, summary.processed, summary.failed, summary.unprocessed) == (300, 300, 0, 0)
    assert emulator_admin.stats()["connections_dropped"] == 1
    assert calls(emulator_admin, "POST", "/batch") == 3  # the lost one was found, not added again
    _loaded_once(hook)


V1_JOB = "/services/async/64.0/job"


@pytest.mark.parametrize("wait", [True, False], ids=["wait", "deferred"])
def test_bulk1_lost_create_reply_creates_another_job(sf_conn, emulator_admin, tmp_path, wait) -> None:
    """The job made by the lost creation is empty and Open: it never loads; the rows load once."""
    hook = SalesforceBulkHook(sf_conn())
    emulator_admin.fault(lose_reply=True, count=1, method="POST", path_prefix=V1_JOB)  # the first POST: creation
    summary = _ingest(hook, tmp_path, api="1.0", wait=wait, resume_key=None if wait else "dag/run/task")
    if not wait:
        summary = hook.collect_ingest_results(str(tmp_path / "res"), **FAST)
    assert (summary.records, summary.processed, summary.failed, summary.unprocessed) == (300, 300, 0, 0)
    assert emulator_admin.stats()["connections_dropped"] == 1
    assert calls(emulator_admin, "POST", V1_JOB) - calls(emulator_admin, "POST", "/batch") == 2 + 1  # 2 made, 1 closed
    assert len(summary.job_ids) == 1
    _loaded_once(hook)


@pytest.mark.parametrize("wait", [True, False], ids=["wait", "deferred"])
def test_bulk1_lost_close_reply_is_settled_by_the_job_state(sf_conn, emulator_admin, tmp_path, monkeypatch,
                                                            wait) -> None:
    """Closing the 1.0 job after its batches went in loses its reply: the job's state shows it
    closed, so the load neither fails (a retry would load every row again) nor closes twice."""
    hook = SalesforceBulkHook(sf_conn())
    close = hook.v1_close_job
    armed: list[str] = []

    def close_losing_the_reply(job_id: str):
        if not armed:  # the job id is known only now: arm the fault for this one close
            armed.append(job_id)
            emulator_admin.fault(lose_reply=True, count=1, method="POST", path_prefix=f"{V1_JOB}/{job_id}")
        return close(job_id)

    monkeypatch.setattr(hook, "v1_close_job", close_losing_the_reply)
    summary = _ingest(hook, tmp_path, api="1.0", wait=wait, resume_key=None if wait else "dag/run/task")
    if not wait:
        summary = hook.collect_ingest_results(str(tmp_path / "res"), **FAST)
    assert armed and emulator_admin.stats()["connections_dropped"] == 1
    assert (summary.records, summary.processed, summary.failed, summary.unprocessed) == (300, 300, 0, 0)
    assert hook.v1_get_job(armed[0])["state"] == "Closed"
    assert calls(emulator_admin, "POST", f"{V1_JOB}/{armed[0]}") - calls(emulator_admin, "POST", "/batch") == 1
    _loaded_once(hook)


@pytest.mark.parametrize("api,prefix", [
    pytest.param("2.0", "/services/data/v64.0/jobs/query", id="v2-create"),
    pytest.param("1.0", V1_JOB, id="v1-create"),  # the first POST under it: the job
    pytest.param("1.0", f"{V1_JOB}/", id="v1-soql-batch"),
])
def test_lost_reply_submitting_a_query_writes_each_row_once(sf_conn, emulator_admin, tmp_path, api, prefix) -> None:
    """A query submitted again (or its batch adopted) after a lost reply: the extract neither fails
    nor holds a row twice (a second SOQL batch in the 1.0 job would)."""
    hook = SalesforceBulkHook(sf_conn())
    _ingest(hook, tmp_path)
    emulator_admin.fault(lose_reply=True, count=1, method="POST", path_prefix=prefix)
    summary = hook.extract("SELECT Name FROM Account WHERE Name LIKE 'Lost %'", tmp_path / "out.csv", api=api,
                           **FAST)
    assert emulator_admin.stats()["connections_dropped"] == 1
    names = sorted(row["Name"] for row in read_csv(tmp_path / "out.csv"))
    assert summary.records == 300 and names == sorted(f"Lost {i:04d}" for i in range(300))
