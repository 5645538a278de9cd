"""Loads that a retry can never duplicate: an insert keyed for reconciliation, then an update.

1. an upstream task writes ``leads.csv``;
2. ``SalesforceCreateRecordsOperator`` inserts the leads through sObject Collections with
   ``idempotency_field``: each record carries a key derived from this task instance and its input
   position. If Salesforce commits a chunk but the reply is lost (a dropped connection, a proxy
   timeout), the operator queries the keys back, counts the records it finds as created and sends
   only the missing ones. Its journal (one per task instance) lets an Airflow retry skip every chunk
   already answered, so ``retries=3`` is safe;
3. ``SalesforceUpdateRecordsOperator`` marks the same leads as worked: an update (like an upsert or
   a delete) converges, so a retry or a chunk whose reply was lost is simply sent again.

On a real org, make ``idempotency_field`` a custom text field marked External ID and Unique (e.g.
``Load_Key__c``). Every org has the Lead ``Title`` field, which is enough to run this example
against the bundled emulator. See docs/reliability.md for what each operation guarantees.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from airflow.sdk import ObjectStoragePath, Param, dag, task

from airflow_provider_salesforce_suite.operators.rest import (
    SalesforceCreateRecordsOperator,
    SalesforceUpdateRecordsOperator,
)

KEY_FIELD = "Title"  # on a real org: a unique External ID text field such as Load_Key__c


@dag(
    dag_id="example_salesforce_reliable_loads",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "rest", "reliability"],
    default_args={"retries": 3, "retry_delay": timedelta(seconds=5)},
    params={
        "leads": Param(450, type="integer", minimum=1, maximum=5000),
        "output_dir": Param("file:///tmp/salesforce_suite_demo/reliable_loads", type="string"),
    },
)
def example_salesforce_reliable_loads():
    @task(multiple_outputs=True)
    def write_leads_csv(params: dict | None = None) -> dict:
        """Write the input file (a stand-in for an upstream extract); return its URI and this run's tag."""
        tag = datetime.now().strftime("%Y%m%d%H%M%S%f")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["LastName", "Company", "Status"])
        for i in range(params["leads"]):
            writer.writerow([f"Reliable {tag} {i:05d}", f"Reliable Co {i % 40}", "Open - Not Contacted"])
        path = ObjectStoragePath(f"{params['output_dir'].rstrip('/')}/leads.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(buffer.getvalue())
        return {"source": str(path), "tag": tag}

    generated = write_leads_csv()
    load = SalesforceCreateRecordsOperator(
        task_id="insert_leads",
        sobject="Lead",
        source=generated["source"],
        idempotency_field=KEY_FIELD,
    )

    @task
    def plan_updates(summary: dict, tag: str) -> list[dict]:
        """Mark every lead this run loaded as worked; each was created exactly once."""
        from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

        soql = f"SELECT Id, {KEY_FIELD} FROM Lead WHERE LastName LIKE 'Reliable {tag} %'"
        rows = list(SalesforceRestHook().query(soql))
        if len(rows) != summary["succeeded"] or len({row[KEY_FIELD] for row in rows}) != len(rows):
            raise ValueError(f"expected {summary['succeeded']} leads, one per key; found {len(rows)}")
        return [{"Id": row["Id"], "Status": "Working - Contacted"} for row in rows]

    update = SalesforceUpdateRecordsOperator(
        task_id="update_leads",
        sobject="Lead",
        records=plan_updates(load.output, generated["tag"]),
    )
    load >> update


example_salesforce_reliable_loads()
