"""The Bulk fan-out DAG of the deployment tests (tests/integration/test_deployment.py).

The CSV files in ``dag_run.conf["dir"]`` are loaded by one mapped ``SalesforceBulkIngestOperator``
task each, in the ``salesforce_deploy`` pool (the test creates it), on whichever Celery worker
takes them; a try that dies is retried, and the retry resumes its submission.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator

DAG_ID = "deploy_bulk_load"
POOL = "salesforce_deploy"


@dag(dag_id=DAG_ID, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["test"])
def deploy_bulk_load():
    @task
    def list_files(dag_run=None) -> list[str]:
        from pathlib import Path

        return sorted(str(path) for path in Path(dag_run.conf["dir"]).glob("*.csv"))

    SalesforceBulkIngestOperator.partial(
        task_id="load", sobject="Account", operation="insert", salesforce_conn_id="salesforce_suite_default",
        pool=POOL, retries=2, retry_delay=timedelta(seconds=2), deferrable=False, poll_interval=1,
        max_records_per_upload=250,
    ).expand(source=list_files())


deploy_bulk_load()
