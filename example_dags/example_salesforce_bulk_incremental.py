"""Incremental extract with the Bulk API: each run writes only the accounts changed since the
previous run.

``SalesforceBulkQueryOperator(incremental=True)`` adds ``SystemModstamp >= <watermark - lookback>``
to the query and, once the file is written, stores the highest ``SystemModstamp`` it extracted
as the new watermark in the asset state store of the task's outlet asset (state that persists
across DAG runs; the task state store does not). The first run extracts everything. Rows on the
window edge may appear in two consecutive files (never zero): load them downstream by ``Id``.

The ``touch_accounts`` task stands in for the users changing data between runs: it updates a few
accounts, so a second run of this DAG extracts just those (plus the edge overlap).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, task

from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkQueryOperator

ACCOUNTS_EXTRACT = Asset("salesforce://emulator/Account/incremental", group="salesforce")


@dag(
    dag_id="example_salesforce_bulk_incremental",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "bulk", "incremental"],
    params={
        "touch": Param(3, type="integer", minimum=0, maximum=50),
        "lookback_seconds": Param(300, type="integer", minimum=0),
        "output_dir": Param("file:///tmp/salesforce_suite_demo/bulk_incremental", type="string"),
    },
)
def example_salesforce_bulk_incremental():
    @task
    def touch_accounts(params: dict | None = None) -> int:
        """Change a few accounts (what users would do between two runs)."""
        from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

        hook = SalesforceRestHook()
        records = list(hook.query(f"SELECT Id FROM Account ORDER BY Name LIMIT {params['touch']}")) if params["touch"] else []
        for record in records:
            hook.update("Account", record["Id"], {"Description": f"touched {datetime.now().isoformat()}"})
        return len(records)

    extract = SalesforceBulkQueryOperator(
        task_id="extract_changed_accounts",
        soql="SELECT Id, Name, Description, SystemModstamp FROM Account",
        output_uri="{{ params.output_dir }}/accounts_{{ run_id | replace(':', '_') | replace('+', '_') }}.jsonl",
        incremental=True,  # watermark on SystemModstamp, kept in ACCOUNTS_EXTRACT's asset state
        lookback="{{ params.lookback_seconds }}",  # overlap before the watermark: late commits are not missed
        outlets=[ACCOUNTS_EXTRACT],
        poll_interval=2,
    )

    touch_accounts() >> extract


example_salesforce_bulk_incremental()
