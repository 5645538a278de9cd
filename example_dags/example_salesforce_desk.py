"""Desk: export the new cases of a Desk API v2 site to a file.

Salesforce retired the hosted Desk.com service in March 2020; this DAG runs against a
Desk-compatible API v2 site (an archive) or the bundled emulator, through the
``salesforce_desk_default`` connection (type ``salesforce_desk``).

1. ``SalesforceDeskToFileOperator`` searches ``cases`` with ``status=new`` created since
   ``since_created_at`` (epoch seconds) and writes them, page by page, to ``output_uri``
   (CSV, JSON Lines or Parquet by suffix; any object-storage URI);
2. a small task logs how many cases were exported; the file's URI and row count are in XCom.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import Param, dag, task

from airflow_provider_salesforce_suite.operators.desk import SalesforceDeskToFileOperator


@dag(
    dag_id="example_salesforce_desk",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "desk"],
    params={
        "since_created_at": Param(0, type="integer", minimum=0),
        "output_uri": Param("file:///tmp/salesforce_suite_demo/desk/new_cases.jsonl", type="string"),
    },
)
def example_salesforce_desk() -> None:
    export = SalesforceDeskToFileOperator(
        task_id="export_new_cases",
        collection="cases",
        search={"status": "new", "since_created_at": "{{ params.since_created_at }}", "sort_field": "created_at"},
        output_uri="{{ params.output_uri }}",
    )

    @task
    def report(result: dict[str, Any]) -> int:
        print(f"Exported {result['rows']} new Desk case(s) to {result['uri']}")
        return int(result["rows"])

    report(export.output)


example_salesforce_desk()
