"""Bulk sensors against the emulator: poke, reschedule and deferrable modes; failed and aborted
jobs fail at once with Salesforce's message."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, TaskDeferred

from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
from airflow_provider_salesforce_suite.sensors.bulk import SalesforceBulkBatchSensor, SalesforceBulkJobSensor
from tests.hooks.bulk_support import bulk_settings


class _TaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "d", "r", "wait", -1, 1

    def get_first_reschedule_date(self, context):
        return None


@pytest.fixture
def context() -> dict:
    return {"ti": _TaskInstance(), "params": {}}


def _job(hook: SalesforceBulkHook) -> str:
    job_id = hook.create_ingest_job("Account", "insert")["id"]
    hook.upload_job_data(job_id, b"Name\nA\nB\n")
    hook.close_job(job_id)
    return job_id


def test_job_sensor_poke_mode(sf_conn, context) -> None:
    conn = sf_conn("sf_sense")
    job_id = _job(SalesforceBulkHook(conn))
    sensor = SalesforceBulkJobSensor(task_id="wait", job_id=job_id, salesforce_conn_id=conn, poke_interval=0.05,
                                     timeout=20, deferrable=False)
    result = sensor.execute(context)
    assert result["state"] == "JobComplete" and result["records_processed"] == 2


def test_job_sensor_reschedule_mode(sf_conn, emulator_admin, context) -> None:
    conn = sf_conn("sf_sense")
    bulk_settings(emulator_admin, min_in_progress_seconds=5)
    job_id = _job(SalesforceBulkHook(conn))
    sensor = SalesforceBulkJobSensor(task_id="wait", job_id=job_id, salesforce_conn_id=conn, mode="reschedule",
                                     poke_interval=30, timeout=600, deferrable=False)
    with pytest.raises(AirflowRescheduleException) as rescheduled:
        sensor.execute(context)
    assert rescheduled.value.reschedule_date > dt.datetime.now(dt.timezone.utc)


def test_failed_job_fails_the_sensor_at_once(sf_conn, emulator_admin, context) -> None:
    conn = sf_conn("sf_sense")
    bulk_settings(emulator_admin, fail_next_job="InvalidBatch : Field name not found : Nope")
    job_id = _job(SalesforceBulkHook(conn))
    sensor = SalesforceBulkJobSensor(task_id="wait", job_id=job_id, salesforce_conn_id=conn, poke_interval=0.05,
                                     timeout=20, deferrable=False)
    with pytest.raises(AirflowFailException, match="Failed: InvalidBatch : Field name not found : Nope"):
        sensor.execute(context)


def test_aborted_v1_job_fails_the_batch_sensor(sf_conn, context) -> None:
    conn = sf_conn("sf_sense")
    hook = SalesforceBulkHook(conn)
    job_id = hook.v1_create_job("Account", "insert")["id"]
    hook.v1_abort_job(job_id)
    sensor = SalesforceBulkJobSensor(task_id="wait", job_id=job_id, api="1.0", salesforce_conn_id=conn,
                                     poke_interval=0.05, timeout=20, deferrable=False)
    with pytest.raises(AirflowFailException, match="Aborted"):
        sensor.execute(context)
    with pytest.raises(AirflowFailException, match="Aborted"):
        SalesforceBulkBatchSensor(task_id="wait", job_id=job_id, salesforce_conn_id=conn, poke_interval=0.05,
                                  timeout=20, deferrable=False).execute(context)


def test_batch_sensor_one_batch_and_all_batches(sf_conn, context) -> None:
    conn = sf_conn("sf_sense")
    hook = SalesforceBulkHook(conn)
    job_id = hook.v1_create_job("Account", "insert")["id"]
    first = hook.v1_add_batch(job_id, b"Name\nA\n")["id"]
    hook.v1_add_batch(job_id, b"Name\n\n")  # a row without Name: a record failure, not a batch failure
    one = SalesforceBulkBatchSensor(task_id="wait", job_id=job_id, batch_id=first, salesforce_conn_id=conn,
                                    poke_interval=0.05, timeout=20, deferrable=False).execute(context)
    assert [b["batch_id"] for b in one] == [first] and one[0]["state"] == "Completed"
    every = SalesforceBulkBatchSensor(task_id="wait", job_id=job_id, salesforce_conn_id=conn, poke_interval=0.05,
                                      timeout=20, deferrable=False).execute(context)
    assert len(every) == 2 and all(b["state"] == "Completed" for b in every)


def test_deferrable_sensor_runs_the_trigger(sf_conn, emulator_admin, context) -> None:
    conn = sf_conn("sf_sense")
    bulk_settings(emulator_admin, min_in_progress_seconds=0.4)
    job_id = _job(SalesforceBulkHook(conn))
    sensor = SalesforceBulkJobSensor(task_id="wait", job_id=job_id, salesforce_conn_id=conn, poke_interval=0.05,
                                     timeout=20, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    assert deferred.value.timeout == dt.timedelta(seconds=20)

    async def first():
        async for event in deferred.value.trigger.run():
            return event.payload

    result = sensor.execute_complete(context, event=asyncio.run(first()))
    assert result["state"] == "JobComplete"
    with pytest.raises(AirflowFailException, match="boom"):
        sensor.execute_complete(context, event={"status": "failed", "message": "boom", "jobs": []})
    with pytest.raises(Exception, match="Unexpected event"):
        sensor.execute_complete(context, event=None)


@pytest.mark.parametrize("api", ["2.0", "1.0"])
def test_purged_job_fails_the_sensor_at_once_naming_it(sf_conn, emulator_admin, context, api) -> None:
    """A job Salesforce removed (7 days after it finished) or that never was: waiting cannot help."""
    conn = sf_conn("sf_sense")
    hook = SalesforceBulkHook(conn)
    job_id = _job(hook) if api == "2.0" else hook.v1_create_job("Account", "insert")["id"]
    bulk_settings(emulator_admin, purge_job=job_id)
    sensor = SalesforceBulkJobSensor(task_id="wait", job_id=job_id, salesforce_conn_id=conn, api=api,
                                     poke_interval=0.05, timeout=20, deferrable=False)
    with pytest.raises(AirflowFailException, match=rf"Bulk API {api} job {job_id} is gone.* 7 days .*Check the job id"):
        sensor.execute(context)
