"""Every deferrable operator and sensor of the provider in one DAG, each deferring once.

tests/operators/test_deferral_everywhere.py runs it with ``dag.test()`` and ``airflow dags test`` (the
trigger runs in-process, and the task resumes with the trigger's event alone) and
tests/integration/test_deferral_airflow.py on a real scheduler and triggerer. The emulator is set
to hold every job a few seconds, so each task finds its job still running and defers. Two shapes of
the same tasks: in parallel for a real deployment, one after another for the in-process runs.

Connections: ``salesforce_suite_default`` (with ``pubsub_endpoint``) and
``salesforce_pardot_default``; Change Data Capture on Account must be on in the emulator.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

from airflow.sdk import ObjectStoragePath, Param, chain, dag, task

from airflow_provider_salesforce_suite.operators.analytics import (
    SalesforceAnalyticsRunDataflowOperator,
    SalesforceAnalyticsUploadOperator,
)
from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator, SalesforceBulkQueryOperator
from airflow_provider_salesforce_suite.operators.pardot import PardotExportOperator, PardotImportOperator
from airflow_provider_salesforce_suite.sensors.analytics import SalesforceAnalyticsDataflowJobSensor
from airflow_provider_salesforce_suite.sensors.bulk import SalesforceBulkBatchSensor, SalesforceBulkJobSensor
from airflow_provider_salesforce_suite.sensors.pardot import PardotExportSensor, PardotImportSensor
from airflow_provider_salesforce_suite.sensors.pubsub import SalesforcePubSubSensor
from airflow_provider_salesforce_suite.sensors.streaming import SalesforceStreamingSensor

#: The tasks that defer (each once): the test checks every one of them did, and succeeded.
DEFERRING_TASKS = (
    "bulk_ingest", "bulk_query", "bulk_job_sensor", "bulk_batch_sensor", "pardot_import", "pardot_export",
    "pardot_import_sensor", "pardot_export_sensor", "analytics_upload", "analytics_dataflow",
    "analytics_dataflow_sensor", "streaming_sensor", "pubsub_sensor",
)
FAST = {"deferrable": True, "poll_interval": 0.5}
SENSOR = {"deferrable": True, "poke_interval": 0.5, "timeout": 120}
EXPORT = {"procedure": "visitorActivity_byDateAndType", "fields": ["id", "prospectId", "type"],
          "arguments": {"createdAfter": "2000-01-01T00:00:00-00:00"}}


def build(dag_id: str, *, serial: bool) -> None:
    """The DAG: every deferring task with what it waits for.

    :param serial: one task after another, each job's starter right before its sensor: what
        ``dag.test()`` needs (it runs one task at a time, so a sensor queued behind other tasks would
        find its job long finished and not defer). Else the pairs and operators run in parallel.
    """

    # A retry covers Airflow's race when a trigger fires before the scheduler saw the deferring
    # process exit (apache/airflow#72716, #67287: the resumed task is failed as "killed
    # externally"); the retry reconnects to the stored job (ResumableJobMixin) or re-defers.
    retries = {} if serial else {"retries": 2, "retry_delay": timedelta(seconds=1)}

    @dag(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, default_args=retries,
         params={"output_dir": Param("file:///tmp/salesforce_suite_deferral", type="string")})
    def deferrable_everywhere():
        @task
        def write_csv(name: str, header: list[str], rows: list[list], params: dict | None = None) -> str:
            path = ObjectStoragePath(f"{(params or {})['output_dir']}/{name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                writer.writerows(rows)
            return str(path)

        @task
        def start_pardot_import(uri: str) -> int:
            from airflow_provider_salesforce_suite.hooks.pardot import PardotHook
            from airflow_provider_salesforce_suite.io import iter_records

            return PardotHook().import_records(iter_records(uri))

        @task
        def start_pardot_export() -> int:
            from airflow_provider_salesforce_suite.hooks.pardot import PardotHook

            return PardotHook().create_export(**EXPORT)

        @task
        def dataflow_id() -> str:
            from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook

            return next(flow["id"] for flow in SalesforceAnalyticsHook().iter_assets("dataflows")
                        if flow["name"] == "Rebuild_Accounts")

        @task
        def start_dataflow(flow: str) -> str:
            from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook

            return SalesforceAnalyticsHook().start_dataflow(flow)["id"]

        @task
        def change_an_account() -> str:
            from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

            return SalesforceRestHook().create("Account", {"Name": "Changed for the event sensors"})

        # Bulk: operators that wait; submit-only operators paired with the job sensors
        bulk_ingest = SalesforceBulkIngestOperator(
            task_id="bulk_ingest", sobject="Account", records=[{"Name": f"Deferred {i}"} for i in range(5)],
            results_dir="{{ params.output_dir }}/ingest", **FAST)
        bulk_query = SalesforceBulkQueryOperator(task_id="bulk_query", soql="SELECT Id, Username FROM User",
                                                 output_uri="{{ params.output_dir }}/users.csv", **FAST)
        bulk_submit = SalesforceBulkIngestOperator(
            task_id="bulk_submit", sobject="Contact", wait_for_completion=False,
            records=[{"LastName": f"Submitted {i}"} for i in range(3)], results_dir="{{ params.output_dir }}/submit")
        bulk_job_sensor = SalesforceBulkJobSensor(
            task_id="bulk_job_sensor", job_id="{{ ti.xcom_pull(task_ids='bulk_submit', key='job_ids')[0] }}",
            **SENSOR)
        bulk_submit_v1 = SalesforceBulkIngestOperator(
            task_id="bulk_submit_v1", sobject="Lead", api="1.0", wait_for_completion=False,
            records=[{"LastName": f"Lead {i}", "Company": "Acme"} for i in range(3)],
            results_dir="{{ params.output_dir }}/v1")
        bulk_batch_sensor = SalesforceBulkBatchSensor(
            task_id="bulk_batch_sensor", job_id="{{ ti.xcom_pull(task_ids='bulk_submit_v1', key='job_ids')[0] }}",
            **SENSOR)
        # Pardot: operators that wait; jobs started from a task, waited for by the sensors
        prospects = write_csv.override(task_id="prospects_csv")(
            "prospects.csv", ["email"], [[f"op{n}@example.com"] for n in range(3)])
        pardot_import = PardotImportOperator(task_id="pardot_import", input_uri=prospects, **FAST)
        pardot_export = PardotExportOperator(task_id="pardot_export",
                                             output_uri="{{ params.output_dir }}/activities.csv", **EXPORT, **FAST)
        more = write_csv.override(task_id="more_prospects_csv")(
            "more_prospects.csv", ["email"], [[f"sensor{n}@example.com"] for n in range(3)])
        import_started = start_pardot_import(more)
        pardot_import_sensor = PardotImportSensor(task_id="pardot_import_sensor", job_id=import_started, **SENSOR)
        export_started = start_pardot_export()
        pardot_export_sensor = PardotExportSensor(task_id="pardot_export_sensor", job_id=export_started, **SENSOR)
        # CRM Analytics: one dataflow run at a time (Salesforce refuses a second while one runs)
        sales = write_csv.override(task_id="sales_csv")("sales.csv", ["Id", "Amount"],
                                                        [[f"S{n}", n] for n in range(5)])
        analytics_upload = SalesforceAnalyticsUploadOperator(task_id="analytics_upload", source=sales,
                                                             dataset="Deferred", **FAST)
        flow = dataflow_id()
        analytics_dataflow = SalesforceAnalyticsRunDataflowOperator(task_id="analytics_dataflow", dataflow_id=flow,
                                                                    **FAST)
        dataflow_started = start_dataflow(flow)
        analytics_dataflow_sensor = SalesforceAnalyticsDataflowJobSensor(task_id="analytics_dataflow_sensor",
                                                                         job_id=dataflow_started, **SENSOR)
        # Events: an Account change, read back from the retained events by both event sensors
        changed = change_an_account()
        streaming_sensor = SalesforceStreamingSensor(task_id="streaming_sensor", channel="/data/AccountChangeEvent",
                                                     replay_id=-2, timeout=60)
        pubsub_sensor = SalesforcePubSubSensor(task_id="pubsub_sensor", topic="/data/AccountChangeEvent",
                                               replay_preset="EARLIEST", timeout=60)

        analytics_dataflow >> dataflow_started
        if serial:
            chain(prospects, more, sales, flow, changed, bulk_ingest, bulk_query, bulk_submit, bulk_job_sensor,
                  bulk_submit_v1, bulk_batch_sensor, pardot_import, pardot_export, import_started,
                  pardot_import_sensor, export_started, pardot_export_sensor, analytics_upload, analytics_dataflow,
                  dataflow_started, analytics_dataflow_sensor, streaming_sensor, pubsub_sensor)
        else:
            bulk_submit >> bulk_job_sensor
            bulk_submit_v1 >> bulk_batch_sensor
            changed >> [streaming_sensor, pubsub_sensor]

    deferrable_everywhere()


#: For a real scheduler and triggerer (tasks in parallel).
build("deferrable_everywhere", serial=False)
#: For dag.test() and ``airflow dags test`` (one task at a time).
build("deferrable_everywhere_serial", serial=True)
