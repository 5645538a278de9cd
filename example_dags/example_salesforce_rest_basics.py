"""Create, query and update Salesforce records, and write the query result to a file.

Runs unchanged against a real org or the bundled emulator: it only needs the
``salesforce_suite_default`` connection (``make demo`` sets it to the emulator).
"""

from __future__ import annotations

import json
from datetime import datetime

from airflow.sdk import ObjectStoragePath, Param, dag, task

from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook


@dag(
    dag_id="example_salesforce_rest_basics",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "rest"],
    params={
        "accounts": Param(3, type="integer", minimum=1, maximum=200),
        "output_uri": Param("file:///tmp/salesforce_suite_demo/accounts.jsonl", type="string"),
    },
)
def example_salesforce_rest_basics():
    @task
    def create_accounts(params: dict | None = None) -> list[str]:
        hook = SalesforceRestHook()
        run_tag = datetime.now().strftime("%Y%m%d%H%M%S%f")
        return [
            hook.create("Account", {"Name": f"Airflow demo {run_tag} #{i}", "Industry": "Technology"})
            for i in range(params["accounts"])
        ]

    @task
    def export_accounts(account_ids: list[str], params: dict | None = None) -> dict:
        """Stream the query result to a JSON Lines file, one page at a time."""
        hook = SalesforceRestHook()
        id_list = ", ".join(f"'{record_id}'" for record_id in account_ids)
        soql = f"SELECT Id, Name, Industry FROM Account WHERE Id IN ({id_list}) ORDER BY Name"
        path = ObjectStoragePath(params["output_uri"])
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = 0
        with path.open("w") as out:
            for record in hook.query(soql):
                record.pop("attributes", None)
                out.write(json.dumps(record) + "\n")
                rows += 1
        return {"file": str(path), "rows": rows}

    @task
    def mark_accounts(account_ids: list[str]) -> int:
        hook = SalesforceRestHook()
        for record_id in account_ids:
            hook.update("Account", record_id, {"Description": "Updated by Airflow", "Rating": "Hot"})
        return len(account_ids)

    ids = create_accounts()
    export_accounts(ids) >> mark_accounts(ids)


example_salesforce_rest_basics()
