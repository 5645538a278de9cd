"""Pardot (Account Engagement): import prospects from a file, then export visitor activities.

``make_prospects`` stands in for an upstream system writing a prospects CSV (one row with a bad
email, to show row errors). ``PardotImportOperator`` streams the file into an Import job (CSV
batches, then ``Ready``), waits for it, and writes the rejected rows to ``errors.csv`` while the
good rows are kept. ``PardotExportOperator`` runs a ``visitorActivity_byDateAndType`` export and
writes its result to a file.

Connection ``salesforce_pardot_default`` (type ``salesforce_pardot``): the Salesforce OAuth
settings plus ``business_unit_id``; see ``docs/pardot.md``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from airflow_provider_salesforce_suite.operators.pardot import PardotExportOperator, PardotImportOperator


@dag(
    dag_id="example_salesforce_pardot",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "pardot"],
    params={
        "rows": Param(20, type="integer", minimum=1, maximum=100_000),
        "output_dir": Param("file:///tmp/salesforce_suite_demo/pardot", type="string"),
        "activities_after": Param("2000-01-01T00:00:00-00:00", type="string"),
    },
)
def example_salesforce_pardot():
    @task
    def make_prospects(params: dict | None = None) -> str:
        """Write a prospects CSV; the last row has an invalid email."""
        import csv
        import io

        from airflow.sdk import ObjectStoragePath

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["email", "firstName", "company"])
        for n in range(params["rows"] - 1):
            writer.writerow([f"prospect{n}@example.com", f"Prospect {n}", "Acme"])
        writer.writerow(["not-an-email", "Broken", "Acme"])
        path = ObjectStoragePath(f"{params['output_dir']}/prospects.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out.getvalue())
        return str(path)

    imported = PardotImportOperator(
        task_id="import_prospects",
        input_uri="{{ ti.xcom_pull(task_ids='make_prospects') }}",
        operation="Upsert",
        errors_uri="{{ params.output_dir }}/errors.csv",
        poll_interval=1,
    )

    exported = PardotExportOperator(
        task_id="export_visitor_activities",
        procedure="visitorActivity_byDateAndType",
        arguments={"createdAfter": "{{ params.activities_after }}"},
        fields=["id", "prospectId", "type", "details", "createdAt"],
        output_uri="{{ params.output_dir }}/visitor_activities.csv",
        poll_interval=1,
    )

    make_prospects() >> imported >> exported


example_salesforce_pardot()
