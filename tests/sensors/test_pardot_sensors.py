"""Pardot Import/Export sensors against the emulator: poke, reschedule and deferrable modes; a
Failed job fails at once."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, TaskDeferred

from airflow_provider_salesforce_suite.hooks.pardot import PardotHook
from airflow_provider_salesforce_suite.sensors.pardot import PardotExportSensor, PardotImportSensor
from airflow_provider_salesforce_suite.triggers.pardot import PardotJobTrigger


class _TaskInstance:
    dag_id, run_id, task_id, map_index, try_number = "d", "r", "wait", -1, 1

    def get_first_reschedule_date(self, context):
        return None


@pytest.fixture
def context() -> dict:
    return {"ti": _TaskInstance(), "params": {}}


def _import(conn: str) -> int:
    return PardotHook(conn).import_records([{"email": "s1@example.com"}, {"email": "bad"}])


def test_import_sensor_poke_mode(pardot_conn, context) -> None:
    conn = pardot_conn()
    sensor = PardotImportSensor(task_id="wait", job_id=_import(conn), pardot_conn_id=conn, poke_interval=0.05,
                                timeout=20, deferrable=False)
    result = sensor.execute(context)
    assert result["state"] == "Complete" and (result["createdCount"], result["errorCount"]) == (1, 1)


def test_export_sensor_reschedule_mode(pardot_conn, pardot_admin, context) -> None:
    conn = pardot_conn()
    pardot_admin(job_seconds=5)
    export_id = PardotHook(conn).create_export("prospect_byUpdatedAt", ["id", "email"])
    sensor = PardotExportSensor(task_id="wait", job_id=export_id, pardot_conn_id=conn, mode="reschedule",
                                poke_interval=30, timeout=600, deferrable=False)
    with pytest.raises(AirflowRescheduleException) as rescheduled:
        sensor.execute(context)
    assert rescheduled.value.reschedule_date > dt.datetime.now(dt.timezone.utc)


def test_failed_job_fails_the_sensor_at_once(pardot_conn, pardot_admin, context) -> None:
    conn = pardot_conn()
    pardot_admin(fail_next_job=True)
    sensor = PardotImportSensor(task_id="wait", job_id=_import(conn), pardot_conn_id=conn, poke_interval=0.05,
                                timeout=20, deferrable=False, retries=3)
    with pytest.raises(AirflowFailException, match="ended Failed"):
        sensor.execute(context)


def test_deferrable_sensor_runs_the_trigger(pardot_conn, pardot_admin, context) -> None:
    conn = pardot_conn()
    pardot_admin(job_seconds=0.4)
    export_id = PardotHook(conn).create_export("prospect_byUpdatedAt", ["id"])
    sensor = PardotExportSensor(task_id="wait", job_id=export_id, pardot_conn_id=conn, poke_interval=0.05,
                                timeout=20, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    assert deferred.value.timeout == dt.timedelta(seconds=20)
    trigger = deferred.value.trigger
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith("triggers.pardot.PardotJobTrigger") and kwargs["job_id"] == export_id

    async def first(trig):
        async for event in trig.run():
            return event.payload

    result = sensor.execute_complete(context, event=asyncio.run(first(PardotJobTrigger(**kwargs))))
    assert result["state"] == "Complete" and len(result["resultRefs"]) == 1
    with pytest.raises(AirflowFailException, match="boom"):
        sensor.execute_complete(context, event={"status": "failed", "message": "boom", "job": None})
    with pytest.raises(Exception, match="Unexpected event"):
        sensor.execute_complete(context, event=None)


def test_trigger_reports_timeout_and_errors(pardot_conn, pardot_admin) -> None:
    conn = pardot_conn()
    pardot_admin(job_seconds=30)
    export_id = PardotHook(conn).create_export("prospect_byUpdatedAt", ["id"])

    async def first(trig):
        async for event in trig.run():
            return event.payload

    timed_out = asyncio.run(first(PardotJobTrigger(kind="export", job_id=export_id, pardot_conn_id=conn,
                                                   poll_interval=0.05, timeout=0.3)))
    assert timed_out["status"] == "timeout" and timed_out["job"]["state"] in ("Waiting", "Processing")
    missing = asyncio.run(first(PardotJobTrigger(kind="import", job_id=999, pardot_conn_id=conn, poll_interval=0.05)))
    assert missing["status"] == "error" and "PARDOT_404" in missing["message"]
    with pytest.raises(ValueError):
        PardotJobTrigger(kind="bulk", job_id=1, pardot_conn_id=conn)
