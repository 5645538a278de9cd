"""Convert leads and merge duplicate accounts through the SOAP (partner) API.

Two jobs the REST API has no call for: ``convertLead`` and ``merge``. Runs unchanged against a real
org or the bundled emulator with the ``salesforce_suite_default`` connection; ``seed`` creates the
demo's leads and duplicate accounts (skip it against a real org: set ``seed`` to false).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from airflow.sdk import Param, dag, task

from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook
from airflow_provider_salesforce_suite.operators.soap import (
    SalesforceConvertLeadsOperator,
    SalesforceMergeRecordsOperator,
)


@dag(
    dag_id="example_salesforce_soap",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "soap"],
    render_template_as_native_obj=True,  # the operators take the lists pulled from XCom as lists
    params={
        "seed": Param(True, type="boolean"),
        "leads": Param(3, type="integer", minimum=0, maximum=100),
        "converted_status": Param("Closed - Converted", type="string"),
    },
)
def example_salesforce_soap():
    @task
    def seed(params: dict | None = None) -> None:
        """Demo data: open leads, and accounts whose names appear two or three times."""
        if not params["seed"]:
            return
        hook = SalesforceSoapHook()
        tag = datetime.now().strftime("%H%M%S%f")
        hook.create([{"type": "Lead", "LastName": f"Lead {i}", "Company": f"Lead & Co {tag} {i}",
                      "Status": "Open - Not Contacted"} for i in range(params["leads"])])
        hook.create([{"type": "Account", "Name": f"Dupe {tag} {n}", "Description": f"copy {c}"}
                     for n in range(2) for c in range(n + 2)])

    @task
    def leads_to_convert(params: dict | None = None) -> list[dict]:
        hook = SalesforceSoapHook()
        rows = hook.query("SELECT Id FROM Lead WHERE IsConverted = false AND Status = 'Open - Not Contacted'")
        return [{"leadId": row["Id"], "doNotCreateOpportunity": True} for row in rows]

    @task
    def duplicate_accounts() -> list[dict]:
        """One merge request per duplicated name: the oldest record survives; merge takes two at a time."""
        hook = SalesforceSoapHook()
        by_name: dict[str, list[str]] = defaultdict(list)
        for row in hook.query("SELECT Id, Name FROM Account ORDER BY CreatedDate, Id"):
            by_name[row["Name"]].append(row["Id"])
        return [{"masterRecord": {"type": "Account", "Id": ids[0]}, "recordToMergeIds": ids[1:3]}
                for ids in by_name.values() if len(ids) > 1]

    convert = SalesforceConvertLeadsOperator(
        task_id="convert_leads",
        lead_converts="{{ ti.xcom_pull(task_ids='leads_to_convert') }}",
        converted_status="{{ params.converted_status }}",
    )
    merge = SalesforceMergeRecordsOperator(
        task_id="merge_duplicates",
        merge_requests="{{ ti.xcom_pull(task_ids='duplicate_accounts') }}",
    )
    seeded = seed()
    seeded >> leads_to_convert() >> convert
    seeded >> duplicate_accounts() >> merge


example_salesforce_soap()
