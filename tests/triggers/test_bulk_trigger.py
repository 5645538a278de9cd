"""SalesforceBulkJobTrigger driven with asyncio against the emulator: one real event per outcome,
and the serialize() round trip."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
from airflow_provider_salesforce_suite.triggers.bulk import SalesforceBulkJobTrigger
from tests.hooks.bulk_support import bulk_settings


def _events(trigger: SalesforceBulkJobTrigger) -> list[dict]:
    async def collect() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), 30))


def _job(hook: SalesforceBulkHook, rows: bytes = b"Name\nA\nB\n") -> str:
    job_id = hook.create_ingest_job("Account", "insert")["id"]
    hook.upload_job_data(job_id, rows)
    hook.close_job(job_id)
    return job_id


def _roundtrip(trigger: SalesforceBulkJobTrigger) -> SalesforceBulkJobTrigger:
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_salesforce_suite.triggers.bulk.SalesforceBulkJobTrigger"
    json.dumps(kwargs)  # JSON-safe
    return SalesforceBulkJobTrigger(**kwargs)


def test_success_event_after_the_job_completes(sf_conn, emulator_admin) -> None:
    conn = sf_conn("sf_trig")
    hook = SalesforceBulkHook(conn)
    bulk_settings(emulator_admin, min_in_progress_seconds=0.3)
    jobs = [_job(hook), _job(hook, b"Name\nC\n")]
    trigger = _roundtrip(SalesforceBulkJobTrigger(job_ids=jobs, salesforce_conn_id=conn, poll_interval=0.05))
    assert trigger.serialize() == _roundtrip(trigger).serialize()
    [event] = _events(trigger)  # exactly one event
    assert event["status"] == "success" and event["message"] is None
    assert [(j["job_id"], j["state"], j["records_processed"]) for j in event["jobs"]] == [
        (jobs[0], "JobComplete", 2), (jobs[1], "JobComplete", 1)]
    json.dumps(event)


def test_failed_job_event_carries_the_state_message(sf_conn, emulator_admin) -> None:
    conn = sf_conn("sf_trig")
    bulk_settings(emulator_admin, fail_next_job="InvalidBatch : bad things")
    job_id = _job(SalesforceBulkHook(conn))
    [event] = _events(SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, poll_interval=0.05))
    assert event["status"] == "failed" and "bad things" in event["message"] and event["jobs"][0]["state"] == "Failed"


def test_timeout_event(sf_conn, emulator_admin) -> None:
    conn = sf_conn("sf_trig")
    bulk_settings(emulator_admin, min_in_progress_seconds=5)
    job_id = _job(SalesforceBulkHook(conn))
    [event] = _events(SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, poll_interval=0.05,
                                               timeout=0.3))
    assert event["status"] == "timeout" and job_id in event["message"]


def test_error_event_for_an_unknown_job(sf_conn) -> None:
    conn = sf_conn("sf_trig")
    [event] = _events(SalesforceBulkJobTrigger(job_ids=["7505E0000000999QAA"], salesforce_conn_id=conn,
                                               poll_interval=0.05))
    assert event["status"] == "error" and "NOT_FOUND" in event["message"]
    assert event["message"].startswith("Bulk API 2.0 job 7505E0000000999QAA is gone") and "7 days" in event["message"]


def test_v1_batches_and_jobs(sf_conn, emulator_admin) -> None:
    conn = sf_conn("sf_trig")
    hook = SalesforceBulkHook(conn)
    job_id = hook.v1_create_job("Account", "insert")["id"]
    batch = hook.v1_add_batch(job_id, b"Name\nA\n")["id"]
    hook.v1_add_batch(job_id, b"Name\nB\nC\n")
    [one] = _events(SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, api="1.0",
                                             batch_ids=[batch], poll_interval=0.05))
    assert one["status"] == "success" and [j["batch_id"] for j in one["jobs"]] == [batch]
    [every] = _events(SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, api="1.0",
                                               batch_ids=["*"], poll_interval=0.05))
    assert every["status"] == "success" and sum(j["records_processed"] for j in every["jobs"]) == 3
    [job] = _events(SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, api="1.0", poll_interval=0.05))
    assert job["status"] == "success"
    hook.v1_abort_job(job_id)
    [aborted] = _events(SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, api="1.0",
                                                 batch_ids=["*"], poll_interval=0.05))
    assert aborted["status"] == "failed" and "Aborted" in aborted["message"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SalesforceBulkJobTrigger(job_ids=[], salesforce_conn_id="x")
    with pytest.raises(ValueError, match="batch_ids"):
        SalesforceBulkJobTrigger(job_ids=["a"], salesforce_conn_id="x", batch_ids=["b"])
