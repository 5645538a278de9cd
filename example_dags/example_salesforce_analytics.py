"""CRM Analytics: load a file into a dataset, run a dataflow, query the result with SAQL.

1. an upstream task writes ``sales.csv`` (``rows`` rows: Id, Region, Amount);
2. ``SalesforceAnalyticsUploadOperator`` loads it into the ``Sales`` dataset through
   ``InsightsExternalData`` (metadata JSON given: Amount is a Numeric measure, Id the unique id)
   and waits until Salesforce has processed it (on the triggerer when ``deferrable``);
3. ``SalesforceAnalyticsRunDataflowOperator`` runs the dataflow named ``dataflow`` (default:
   the emulator's ``Rebuild_Accounts``) and waits for its job;
4. ``SalesforceAnalyticsQueryOperator`` sums Amount by Region with SAQL into XCom.

Runs against a real org (name a dataflow of yours) or the bundled emulator; it needs the
``salesforce_suite_default`` connection.
"""

from __future__ import annotations

import csv
from datetime import datetime

from airflow.sdk import ObjectStoragePath, Param, dag, task

from airflow_provider_salesforce_suite.operators.analytics import (
    SalesforceAnalyticsQueryOperator,
    SalesforceAnalyticsRunDataflowOperator,
    SalesforceAnalyticsUploadOperator,
)

SALES_METADATA = {
    "fileFormat": {"charsetName": "UTF-8", "fieldsDelimitedBy": ",", "numberOfLinesToIgnore": 1},
    "objects": [{"connector": "AirflowCSV", "fullyQualifiedName": "Sales", "label": "Sales", "name": "Sales",
                 "fields": [
                     {"fullyQualifiedName": "Sales.Id", "name": "Id", "label": "Id", "type": "Text",
                      "isUniqueId": True},
                     {"fullyQualifiedName": "Sales.Region", "name": "Region", "label": "Region", "type": "Text"},
                     {"fullyQualifiedName": "Sales.Amount", "name": "Amount", "label": "Amount", "type": "Numeric",
                      "precision": 18, "scale": 2, "defaultValue": "0"},
                 ]}],
}


@dag(
    dag_id="example_salesforce_analytics",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "analytics"],
    params={
        "rows": Param(1_000, type="integer", minimum=1),
        "dataflow": Param("Rebuild_Accounts", type="string"),
        "output_dir": Param("file:///tmp/salesforce_suite_demo/analytics", type="string"),
    },
)
def example_salesforce_analytics():
    @task
    def write_sales_csv(params: dict | None = None) -> str:
        """Write the input file row by row; return its URI."""
        params = params or {}
        path = ObjectStoragePath(params["output_dir"]) / "sales.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Id", "Region", "Amount"])
            for i in range(int(params["rows"])):
                writer.writerow([f"S{i:07d}", ("EMEA", "AMER", "APAC")[i % 3], f"{(i % 50) * 10.5:.2f}"])
        return str(path)

    @task
    def dataflow_id(params: dict | None = None) -> str:
        """The id of the dataflow named by the ``dataflow`` param."""
        from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook

        name = (params or {})["dataflow"]
        for flow in SalesforceAnalyticsHook().iter_assets("dataflows"):
            if name in (flow["name"], flow["id"]):
                return flow["id"]
        raise ValueError(f"No dataflow named {name!r}")

    source = write_sales_csv()
    load = SalesforceAnalyticsUploadOperator(task_id="load_sales", source=source, dataset="Sales",
                                             dataset_label="Sales", metadata=SALES_METADATA, poll_interval=1)
    run = SalesforceAnalyticsRunDataflowOperator(task_id="run_dataflow", dataflow_id=dataflow_id(), poll_interval=1)
    totals = SalesforceAnalyticsQueryOperator(
        task_id="sales_by_region",
        saql="q = load \"Sales\"; q = group q by Region; "
             "q = foreach q generate Region as 'Region', count() as 'deals', sum(Amount) as 'amount'; "
             "q = order q by 'amount' desc;",
    )
    load >> run >> totals


example_salesforce_analytics()
