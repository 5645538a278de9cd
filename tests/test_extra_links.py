"""Extra links, read back the way Airflow's API server does for the UI: from the serialized DAG
stored by a real ``dag.test()`` run against the emulator (``task.get_extra_links(ti, name)``,
which reads the URL the task pushed to XCom)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import requests


def _run(dag_id: str, **conf):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(Path(__file__).resolve().parent.parent / "example_dags")).get_dag(dag_id)
    run = dag.test(run_conf=conf)
    assert run.state == "success"
    return run


def _links(run, task_id: str) -> dict[str, str | None]:
    from airflow.models.serialized_dag import SerializedDagModel

    task = SerializedDagModel.get_dag(run.dag_id).get_task(task_id)
    [ti] = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    return {name: task.get_extra_links(ti, name) for name in task.extra_links}


def test_provider_registers_the_links() -> None:
    from airflow_provider_salesforce_suite.get_provider_info import get_provider_info
    from airflow_provider_salesforce_suite.links import LINK_CLASSES

    assert get_provider_info()["extra-links"] == [f"{cls.__module__}.{cls.__qualname__}" for cls in LINK_CLASSES]


def test_bulk_load_links_its_first_job(airflow_db, salesforce_connection, salesforce_emulator_reset,
                                       tmp_path: Path) -> None:
    run = _run("example_salesforce_bulk_load", rows=300, output_dir=f"file://{tmp_path}")
    url = _links(run, "bulk_load_accounts")["Salesforce Bulk job"]
    base = salesforce_emulator_reset.url.rstrip("/")
    match = re.fullmatch(re.escape(base) + r"/lightning/setup/AsyncApiJobStatus/page\?address=(.+)", url or "")
    assert match, url
    job_id = unquote(match.group(1)).lstrip("/")
    summary = run.get_task_instances()  # the job the link names is the one the task submitted
    [ti] = [ti for ti in summary if ti.task_id == "bulk_load_accounts"]
    assert job_id == ti.xcom_pull(task_ids="bulk_load_accounts")["job_ids"][0]
    page = requests.get(url, verify=False, timeout=10)
    assert page.status_code == 200 and job_id in page.text and "JobComplete" in page.text


def test_saved_records_link_the_first_record(airflow_db, salesforce_connection, salesforce_emulator_reset,
                                             tmp_path: Path) -> None:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    run = _run("example_salesforce_rest_files", accounts=10, output_dir=f"file://{tmp_path}")
    base = salesforce_emulator_reset.url.rstrip("/")
    created = _links(run, "load_accounts")["Salesforce record"]
    match = re.fullmatch(re.escape(base) + r"/lightning/r/Account/(\w+)/view", created or "")
    assert match, created
    record = SalesforceRestHook(salesforce_connection).get("Account", match.group(1), fields=["Name"])
    assert record["Name"].endswith("#00")  # the first row of the input
    updated = _links(run, "update_accounts")["Salesforce record"]
    assert re.fullmatch(re.escape(base) + r"/lightning/r/Account/\w+/view", updated or ""), updated
    page = requests.get(created, verify=False, timeout=10)
    assert page.status_code == 200 and match.group(1) in page.text and record["Name"] in page.text


def test_analytics_upload_links_the_dataset(airflow_db, salesforce_connection, salesforce_emulator_reset,
                                            tmp_path: Path) -> None:
    from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook

    run = _run("example_salesforce_analytics", rows=30, output_dir=f"file://{tmp_path}")
    url = _links(run, "load_sales")["CRM Analytics dataset"]
    [dataset] = [d for d in SalesforceAnalyticsHook(salesforce_connection).iter_datasets() if d["name"] == "Sales"]
    assert url == f"{salesforce_emulator_reset.url.rstrip('/')}/analytics/dataset/{dataset['id']}"
    page = requests.get(url, verify=False, timeout=10)
    assert page.status_code == 200 and "Sales" in page.text

