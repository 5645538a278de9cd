"""A large load with the Bulk API: generate a CSV, stream it into Account, keep the failures.

1. an upstream task writes ``accounts.csv`` with ``rows`` rows (default 50,000; every 1,000th row
   has no Name, so Salesforce rejects it) -- written row by row, never held in memory;
2. ``SalesforceBulkIngestOperator`` streams the file into Bulk API 2.0 ingest jobs (split at
   ``max_records_per_upload``), waits (deferred to the triggerer when ``deferrable``), and writes
   ``successful.csv``, ``failed.csv`` (with ``sf__Error``) and ``unprocessed.csv`` to
   ``<output_dir>/results``; up to ``max_failed_records`` rejected rows do not fail the task;
3. a report task reads the summary from XCom and the failures file.

Runs unchanged against a real org or the bundled emulator; it only needs the
``salesforce_suite_default`` connection. Files go under the ``output_dir`` param (any
``ObjectStoragePath`` URI).
"""

from __future__ import annotations

import csv
from datetime import datetime

from airflow.sdk import ObjectStoragePath, Param, dag, task

from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator


@dag(
    dag_id="example_salesforce_bulk_load",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "bulk"],
    params={
        "rows": Param(50_000, type="integer", minimum=1),
        "output_dir": Param("file:///tmp/salesforce_suite_demo/bulk_load", type="string"),
    },
)
def example_salesforce_bulk_load():
    @task
    def write_accounts_csv(params: dict | None = None) -> str:
        """Write the input file row by row; return its URI."""
        path = ObjectStoragePath(f"{params['output_dir'].rstrip('/')}/accounts.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        tag = datetime.now().strftime("%Y%m%d%H%M%S")
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Name", "AccountNumber", "NumberOfEmployees", "Industry", "Description"])
            for i in range(params["rows"]):
                name = "" if i % 1000 == 999 else f"Bulk demo {tag} #{i:06d}"  # no Name: rejected
                writer.writerow([name, f"BD-{i:06d}", i % 5000, ("Energy", "Retail", "Banking")[i % 3],
                                 f"generated row {i}"])
        return str(path)

    load = SalesforceBulkIngestOperator(
        task_id="bulk_load_accounts",
        sobject="Account",
        operation="insert",
        source=write_accounts_csv(),
        results_dir="{{ params.output_dir }}/results",
        max_records_per_upload=25_000,  # two or more jobs for the default size
        max_failed_records=100,  # the 50 rejected rows land in results/failed.csv; more than 100 fail the task
        poll_interval=2,
        progress_interval=30,
    )

    @task
    def report(summary: dict) -> dict:
        """Print what happened; the failures file explains each rejected row."""
        print(f"{summary['records']} rows: {summary['processed']} loaded, {summary['failed']} rejected, "
              f"{summary['unprocessed']} unprocessed (jobs {', '.join(summary['job_ids'])})")
        with ObjectStoragePath(summary["failed_uri"]).open("r") as handle:
            for row in list(csv.DictReader(handle))[:3]:
                print(f"  input row {row['sf__InputRow']}: {row['sf__Error']}")
        return {k: summary[k] for k in ("records", "processed", "failed", "unprocessed")}

    report(load.output)


example_salesforce_bulk_load()
