"""The deferred-waits DAG of the deployment tests (tests/integration/test_deployment.py).

Four mapped deferrable sensors wait on jobs the test started and the emulator holds in progress:
Bulk 2.0 ingest jobs, Bulk 1.0 jobs, CRM Analytics dataflow jobs and Pardot exports. The job ids
come in ``dag_run.conf`` (``{"bulk2": [...], "bulk1": [...], "analytics": [...], "pardot": [...]}``), one mapped task per id; an id listed twice is waited on by two tasks.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_salesforce_suite.sensors.analytics import SalesforceAnalyticsDataflowJobSensor
from airflow_provider_salesforce_suite.sensors.bulk import SalesforceBulkJobSensor
from airflow_provider_salesforce_suite.sensors.pardot import PardotExportSensor

DAG_ID = "deploy_waits"
CONN_ID = "salesforce_suite_default"
PARDOT_CONN_ID = "salesforce_pardot_default"
#: Seconds between two polls of a job (the sensors' poke interval, their triggers' poll interval).
POLL_INTERVAL = 2.0
WAIT = {"deferrable": True, "timeout": 1800, "poke_interval": POLL_INTERVAL}


@dag(dag_id=DAG_ID, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=1000,
     tags=["test"])
def deploy_waits():
    @task
    def job_ids(api: str, dag_run=None) -> list[str]:
        return [str(job_id) for job_id in dag_run.conf[api]]

    def ids(api: str):
        return job_ids.override(task_id=f"{api}_ids")(api)

    SalesforceBulkJobSensor.partial(task_id="bulk2", salesforce_conn_id=CONN_ID, **WAIT).expand(job_id=ids("bulk2"))
    SalesforceBulkJobSensor.partial(task_id="bulk1", salesforce_conn_id=CONN_ID, api="1.0", **WAIT).expand(
        job_id=ids("bulk1"))
    SalesforceAnalyticsDataflowJobSensor.partial(task_id="analytics", salesforce_conn_id=CONN_ID, **WAIT).expand(
        job_id=ids("analytics"))
    PardotExportSensor.partial(task_id="pardot", pardot_conn_id=PARDOT_CONN_ID, **WAIT).expand(job_id=ids("pardot"))

deploy_waits()
