"""CRM Analytics operators and sensor against the emulator: SAQL to XCom (row cap) and to a
file, upload (waiting on the worker, and deferred: TaskDeferred -> trigger -> execute_complete),
dataflow/recipe runs, a failed dataflow failing at once, the list/get operator, the sensor in
poke and deferrable modes."""

from __future__ import annotations

import asyncio
import csv

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsError, SalesforceAnalyticsHook
from airflow_provider_salesforce_suite.operators.analytics import (
    SalesforceAnalyticsGetOperator,
    SalesforceAnalyticsQueryOperator,
    SalesforceAnalyticsRunDataflowOperator,
    SalesforceAnalyticsUploadOperator,
)
from airflow_provider_salesforce_suite.sensors.analytics import SalesforceAnalyticsDataflowJobSensor
from tests.hooks.test_analytics_hook import META, analytics_settings, write_sales
from tests.operators.resumable_support import Crash, TaskStateStore, requests_to

FAST = {"poll_interval": 0.02}


@pytest.fixture
def conn(sf_conn) -> str:
    return sf_conn("sf_analytics_ops")


def run_trigger(deferred: TaskDeferred) -> dict:
    classpath, kwargs = deferred.trigger.serialize()
    assert classpath == "airflow_provider_salesforce_suite.triggers.analytics.SalesforceAnalyticsJobTrigger"

    async def first():
        async for event in type(deferred.trigger)(**kwargs).run():
            return event.payload

    return asyncio.run(first())


def _upload(conn, tmp_path, rows: int = 30, **kwargs) -> SalesforceAnalyticsUploadOperator:
    return SalesforceAnalyticsUploadOperator(task_id="load", salesforce_conn_id=conn, dataset="Sales",
                                             source=write_sales(tmp_path / "s.csv", rows), **{**FAST, **kwargs})


def test_upload_waits_then_query_to_xcom_and_cap(conn, tmp_path) -> None:
    result = _upload(conn, tmp_path, metadata=META).execute({})
    assert result["status"] == "Completed" and result["id"].startswith("06V")
    query = "q = load \"Sales\"; q = group q by Region; q = foreach q generate Region as 'Region', " \
            "sum(Amount) as 'total'; q = order q by Region;"
    rows = SalesforceAnalyticsQueryOperator(task_id="q", salesforce_conn_id=conn, saql=query).execute({})
    assert rows == [{"Region": "APAC", "total": 155}, {"Region": "EU", "total": 135}, {"Region": "US", "total": 145}]
    capped = SalesforceAnalyticsQueryOperator(task_id="q", salesforce_conn_id=conn, max_xcom_rows=5,
                                              saql='q = load "Sales"; q = foreach q generate Id;')
    with pytest.raises(SalesforceAnalyticsError, match="returned 30 rows, more than max_xcom_rows=5"):
        capped.execute({})


def test_query_to_file(conn, tmp_path) -> None:
    _upload(conn, tmp_path, rows=12, metadata=META).execute({})
    out = tmp_path / "out" / "rows.csv"
    result = SalesforceAnalyticsQueryOperator(task_id="q", salesforce_conn_id=conn, output_uri=str(out),
                                              saql='q = load "Sales"; q = filter q by Amount >= 10; '
                                                   "q = foreach q generate Id as 'Id', Amount as 'Amount';"
                                              ).execute({})
    assert result["rows"] == 2
    with open(out) as fh:
        assert list(csv.DictReader(fh)) == [{"Id": "10", "Amount": "10"}, {"Id": "11", "Amount": "11"}]


def test_upload_deferrable_path(conn, tmp_path, salesforce_emulator_reset) -> None:
    analytics_settings(salesforce_emulator_reset, min_running_seconds=0.3)
    op = _upload(conn, tmp_path, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    event = run_trigger(deferred.value)
    assert event["status"] == "success" and event["kind"] == "upload"
    assert op.execute_complete({}, event=event)["status"] == "Completed"


def test_upload_with_bad_metadata_fails_at_once(conn, tmp_path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("Id,Region\n1,EU\n")
    op = SalesforceAnalyticsUploadOperator(task_id="load", salesforce_conn_id=conn, dataset="Bad", source=str(source),
                                           metadata=META, **FAST)
    with pytest.raises(AirflowFailException, match="ended Failed: Metadata does not match"):
        op.execute({})
    deferred_op = SalesforceAnalyticsUploadOperator(task_id="load", salesforce_conn_id=conn, dataset="Bad",
                                                    source=str(source), metadata=META, deferrable=True, **FAST)
    with pytest.raises(TaskDeferred) as deferred:
        deferred_op.execute({})
    event = run_trigger(deferred.value)
    assert event["status"] == "failed"
    with pytest.raises(AirflowFailException, match="Metadata does not match"):
        deferred_op.execute_complete({}, event=event)


def test_run_dataflow_and_recipe(conn, salesforce_emulator_reset) -> None:
    hook = SalesforceAnalyticsHook(conn)
    flow_id = hook.list_dataflows()[0]["id"]
    done = SalesforceAnalyticsRunDataflowOperator(task_id="df", salesforce_conn_id=conn, dataflow_id=flow_id,
                                                  **FAST).execute({})
    assert done["status"] == "Success"
    recipe = SalesforceAnalyticsRunDataflowOperator(task_id="r", salesforce_conn_id=conn, wait=False,
                                                    recipe_id=hook.list_recipes()[0]["id"]).execute({})
    assert recipe["id"].startswith("03C") and recipe["status"] == "Queued"
    analytics_settings(salesforce_emulator_reset, fail_next_dataflow="Node sfdcDigest_Account failed: boom")
    with pytest.raises(AirflowFailException, match="ended Failure: Node sfdcDigest_Account failed: boom"):
        SalesforceAnalyticsRunDataflowOperator(task_id="df", salesforce_conn_id=conn, dataflow_id=flow_id,
                                               **FAST).execute({})
    analytics_settings(salesforce_emulator_reset, min_running_seconds=0.3)
    op = SalesforceAnalyticsRunDataflowOperator(task_id="df", salesforce_conn_id=conn, dataflow_id=flow_id,
                                                deferrable=True, **FAST)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    assert op.execute_complete({}, event=run_trigger(deferred.value))["status"] == "Success"
    with pytest.raises(ValueError, match="exactly one"):
        SalesforceAnalyticsRunDataflowOperator(task_id="x", dataflow_id="a", recipe_id="b")


def test_sensor_poke_and_deferrable(conn, salesforce_emulator_reset) -> None:
    hook = SalesforceAnalyticsHook(conn)
    flow_id = hook.list_dataflows()[0]["id"]
    analytics_settings(salesforce_emulator_reset, min_running_seconds=0.3)
    job = hook.start_dataflow(flow_id)
    sensor = SalesforceAnalyticsDataflowJobSensor(task_id="s", salesforce_conn_id=conn, job_id=job["id"],
                                                  poke_interval=0.05, timeout=20, mode="poke")
    assert not sensor.poke({}).is_done
    assert sensor.execute({})["status"] == "Success"
    job = hook.start_dataflow(flow_id)
    deferred_sensor = SalesforceAnalyticsDataflowJobSensor(task_id="s", salesforce_conn_id=conn, job_id=job["id"],
                                                           poke_interval=0.05, timeout=20, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        deferred_sensor.execute({})
    assert deferred_sensor.execute_complete({}, event=run_trigger(deferred.value))["status"] == "Success"
    analytics_settings(salesforce_emulator_reset, fail_next_dataflow="out of memory", min_running_seconds=0)
    job = hook.start_dataflow(flow_id)
    failing = SalesforceAnalyticsDataflowJobSensor(task_id="s", salesforce_conn_id=conn, job_id=job["id"],
                                                   poke_interval=0.05, timeout=20, mode="reschedule")
    with pytest.raises(AirflowFailException, match="ended Failure: out of memory"):
        _poke_until_fail(failing)
    with pytest.raises(SalesforceAnalyticsError, match="Unexpected event"):
        failing.execute_complete({}, event={"status": "odd"})


def _poke_until_fail(sensor) -> None:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sensor.poke({})
        time.sleep(0.05)


def test_get_operator(conn, tmp_path) -> None:
    _upload(conn, tmp_path, metadata=META).execute({})
    datasets = SalesforceAnalyticsGetOperator(task_id="g", salesforce_conn_id=conn, resource="datasets",
                                              filters={"q": "Sales"}).execute({})
    assert [d["name"] for d in datasets] == ["Sales"]
    one = SalesforceAnalyticsGetOperator(task_id="g", salesforce_conn_id=conn, resource="datasets",
                                         resource_id=datasets[0]["id"]).execute({})
    assert one["id"] == datasets[0]["id"]
    assert len(SalesforceAnalyticsGetOperator(task_id="g", salesforce_conn_id=conn, resource="dataflows",
                                              max_items=1).execute({})) == 1
    with pytest.raises(ValueError, match="resource must be one of"):
        SalesforceAnalyticsGetOperator(task_id="g", resource="widgets")


# -- retries and crashes (ResumableJobMixin) -------------------------------------------------------

HEADERS = "POST */sobjects/InsightsExternalData"


@pytest.fixture
def slow_jobs(salesforce_emulator_reset):
    """Uploads and dataflow jobs run for a second (the worker dies meanwhile); knobs restored after."""
    before = analytics_settings(salesforce_emulator_reset)
    analytics_settings(salesforce_emulator_reset, min_running_seconds=1.0)
    yield salesforce_emulator_reset
    analytics_settings(salesforce_emulator_reset, min_running_seconds=before["min_running_seconds"])


def _sales_rows(conn) -> int:
    rows = SalesforceAnalyticsHook(conn).query_records('q = load "Sales"; q = group q by all; '
                                                       "q = foreach q generate count() as 'n';")
    return rows[0]["n"]


def test_upload_retry_after_a_crash_reconnects_instead_of_loading_twice(conn, tmp_path, slow_jobs,
                                                                         emulator_admin) -> None:
    context = {"task_state_store": TaskStateStore()}
    # The worker uploads and sets Process, then dies while waiting: the header id is kept.
    header_id = _upload(conn, tmp_path, metadata=META, operation="Append").submit_job(context)
    assert context["task_state_store"] == {SalesforceAnalyticsUploadOperator.external_id_key: header_id}
    result = _upload(conn, tmp_path, metadata=META, operation="Append").execute(context)
    assert (result["id"], result["status"]) == (header_id, "Completed")
    # After it finished: collected again, nothing uploaded.
    assert _upload(conn, tmp_path, metadata=META, operation="Append").execute(context)["id"] == header_id
    assert requests_to(emulator_admin, HEADERS) == 1 and _sales_rows(conn) == 30


def test_upload_crash_before_process_uploads_again(conn, tmp_path, emulator_admin) -> None:
    context = {"task_state_store": TaskStateStore()}

    def crash(self, *args, **kwargs):
        raise Crash("worker died before setting Action to Process")

    first = _upload(conn, tmp_path, metadata=META, operation="Append")
    first.hook = type("CrashingHook", (SalesforceAnalyticsHook,), {"process_upload": crash})(conn)
    with pytest.raises(Crash):
        first.execute(context)
    never = context["task_state_store"][SalesforceAnalyticsUploadOperator.external_id_key]
    assert SalesforceAnalyticsHook(conn).upload_status(never).status == "New"
    result = _upload(conn, tmp_path, metadata=META, operation="Append").execute(context)
    assert result["id"] != never and result["status"] == "Completed"
    assert requests_to(emulator_admin, HEADERS) == 2 and _sales_rows(conn) == 30
    assert SalesforceAnalyticsHook(conn).upload_status(never).status == "New"  # never loaded


def test_dataflow_retry_reconnects_and_a_failed_job_is_not_run_again(conn, slow_jobs, emulator_admin) -> None:
    hook = SalesforceAnalyticsHook(conn)
    flow_id = hook.list_dataflows()[0]["id"]

    def run(**kwargs) -> SalesforceAnalyticsRunDataflowOperator:
        return SalesforceAnalyticsRunDataflowOperator(task_id="df", salesforce_conn_id=conn, dataflow_id=flow_id,
                                                      **{**FAST, **kwargs})

    context = {"task_state_store": TaskStateStore()}
    job_id = run().submit_job(context)
    context["task_state_store"].set(run().external_id_key, job_id)  # as the mixin does
    with pytest.raises(TaskDeferred) as deferred:  # a deferrable retry waits for the same job
        run(deferrable=True).execute(context)
    assert deferred.value.trigger.serialize()[1]["object_id"] == job_id
    assert run(deferrable=False).execute(context) == {"id": job_id, "status": "Success", "message": None}
    assert requests_to(emulator_admin, "POST */wave/dataflowjobs") == 1
    # A job that failed while no worker watched: the retry fails with its message, runs nothing.
    analytics_settings(slow_jobs, fail_next_dataflow="Node digest failed: boom", min_running_seconds=0)
    context = {"task_state_store": TaskStateStore()}
    failed_id = run().submit_job(context)
    context["task_state_store"].set(run().external_id_key, failed_id)
    with pytest.raises(SalesforceAnalyticsError, match="boom"):
        hook.wait("dataflow_job", failed_id, poll_interval=0.02)
    with pytest.raises(AirflowFailException, match="ended Failure: Node digest failed: boom"):
        run(deferrable=False).execute(context)
    assert requests_to(emulator_admin, "POST */wave/dataflowjobs") == 2
