"""Load Salesforce records from a file, export them to Parquet and JSON Lines, update them.

1. an upstream task writes ``accounts.csv`` (every fifth row has no Name: Salesforce rejects it);
2. ``SalesforceCreateRecordsOperator`` streams the CSV into Account through sObject Collections;
   the rejected rows go to ``accounts.failed.csv`` beside it (``sf__Error``, ``sf__Fields``) and,
   being within ``max_failed_records``, do not fail the task;
3. ``SalesforceQueryOperator`` writes the loaded accounts to ``accounts.parquet`` page by page;
4. a task turns the Parquet rows into updates, ``SalesforceUpdateRecordsOperator`` applies them;
5. the updated accounts are exported to ``accounts_updated.jsonl``.

Runs unchanged against a real org or the bundled emulator: it only needs the
``salesforce_suite_default`` connection. Files go under the ``output_dir`` param (any
``ObjectStoragePath`` URI: ``file://``, ``s3://``...).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from airflow.sdk import ObjectStoragePath, Param, dag, task

from airflow_provider_salesforce_suite.operators.rest import (
    SalesforceCreateRecordsOperator,
    SalesforceQueryOperator,
    SalesforceUpdateRecordsOperator,
)

INDUSTRIES = ["Technology", "Energy", "Banking", "Retail"]


@dag(
    dag_id="example_salesforce_rest_files",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "rest", "files"],
    params={
        "accounts": Param(10, type="integer", minimum=1, maximum=50),
        "output_dir": Param("file:///tmp/salesforce_suite_demo/rest_files", type="string"),
    },
)
def example_salesforce_rest_files():
    @task(multiple_outputs=True)
    def write_accounts_csv(params: dict | None = None) -> dict:
        """Write the input file; return its URI and the query selecting this run's accounts."""
        tag = datetime.now().strftime("%Y%m%d%H%M%S%f")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["Name", "Industry", "NumberOfEmployees"])
        for i in range(params["accounts"]):
            name = "" if i % 5 == 4 else f"Files demo {tag} #{i:02d}"  # no Name: REQUIRED_FIELD_MISSING
            writer.writerow([name, INDUSTRIES[i % len(INDUSTRIES)], 10 * (i + 1)])
        path = ObjectStoragePath(f"{params['output_dir'].rstrip('/')}/accounts.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(buffer.getvalue())
        where = f"WHERE Name LIKE 'Files demo {tag} %' ORDER BY Name"
        return {
            "source": str(path),
            "soql": f"SELECT Id, Name, Industry, NumberOfEmployees, Owner.Name FROM Account {where}",
            "updated_soql": f"SELECT Id, Name, Rating FROM Account {where}",
        }

    generated = write_accounts_csv()

    load = SalesforceCreateRecordsOperator(
        task_id="load_accounts",
        sobject="Account",
        source=generated["source"],
        max_failed_records=10,  # rejected rows go to accounts.failed.csv; more than 10 fail the task
    )

    export_parquet = SalesforceQueryOperator(
        task_id="export_parquet",
        soql=generated["soql"],
        output_uri="{{ params.output_dir }}/accounts.parquet",
    )

    @task
    def plan_updates(export: dict) -> list[dict]:
        """Read the Parquet export back (streamed) and decide each account's new Rating."""
        from airflow_provider_salesforce_suite.io import iter_records

        return [
            {"Id": row["Id"], "Rating": "Hot" if int(row["NumberOfEmployees"]) >= 50 else "Warm"}
            for row in iter_records(export["output_uri"])
        ]

    update = SalesforceUpdateRecordsOperator(task_id="update_accounts", sobject="Account",
                                             records=plan_updates(export_parquet.output))

    export_jsonl = SalesforceQueryOperator(
        task_id="export_updated_jsonl",
        soql=generated["updated_soql"],
        output_uri="{{ params.output_dir }}/accounts_updated.jsonl",
    )

    load >> export_parquet
    update >> export_jsonl


example_salesforce_rest_files()
