"""The held-jobs workload shared by the deferred-waits benchmark and the deployment scenario
(tests/integration/test_deployment.py): jobs of four APIs the emulator holds in progress, and the
status GETs their waits cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

APIS = ("bulk2", "bulk1", "analytics", "pardot")
#: Each API's status path of a job (what one poll requests), by job id.
POLL_PATHS = {"bulk2": "/jobs/ingest/{}", "bulk1": "/job/{}", "analytics": "/wave/dataflowjobs/{}",
              "pardot": "/api/v5/exports/{}"}
PARDOT_BUSINESS_UNIT = "0Uv000000000001AAA"


def hold_jobs(url: str, verify: Any, held: bool) -> None:
    """Hold (or release) every Bulk, Analytics and Pardot job in progress in the emulator at ``url``."""
    for api in ("bulk", "analytics", "pardot"):
        reply = requests.post(f"{url}/__emulator__/{api}", json={"hold_jobs": held}, verify=verify, timeout=30)
        reply.raise_for_status()


def pardot_connection(connection_json: str, url: str) -> dict[str, Any]:
    """The emulator's Salesforce connection turned into a ``salesforce_pardot`` one (its default Business Unit)."""
    import json

    conn = json.loads(connection_json)
    conn["conn_type"] = "salesforce_pardot"
    conn["extra"] = {**conn.get("extra", {}), "business_unit_id": PARDOT_BUSINESS_UNIT, "pardot_host": url}
    return conn


def start_held_jobs(count: int, conn_id: str = "salesforce_suite_default",
                    pardot_conn_id: str = "salesforce_pardot_default") -> dict[str, list[Any]]:
    """``count`` jobs of each API (hold them first: :func:`hold_jobs`): api -> job ids."""
    from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook
    from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
    from airflow_provider_salesforce_suite.hooks.pardot import PardotHook

    bulk, analytics, pardot = SalesforceBulkHook(conn_id), SalesforceAnalyticsHook(conn_id), PardotHook(pardot_conn_id)
    dataflow = analytics.list_dataflows()[0]["id"]
    jobs: dict[str, list[Any]] = {api: [] for api in APIS}
    for i in range(count):
        job_id = bulk.create_ingest_job("Account", "insert")["id"]
        bulk.upload_job_data(job_id, f"Name\nwait-{i}\n".encode())
        bulk.close_job(job_id)
        jobs["bulk2"].append(job_id)
        job_id = bulk.v1_create_job("Account", "insert")["id"]
        bulk.v1_add_batch(job_id, f"Name\nwait-v1-{i}\n".encode())
        jobs["bulk1"].append(job_id)
        jobs["analytics"].append(analytics.start_dataflow(dataflow)["id"])
        jobs["pardot"].append(pardot.create_export("prospect_byUpdatedAt", ["id"]))
    return jobs


def poll_counts(requests_seen: Mapping[str, int], jobs: Mapping[str, list[Any]]) -> dict[tuple[str, str], int]:
    """(api, job id) -> GETs of its status path, from the emulator's ``stats["requests"]``."""
    counts = {}
    for api, ids in jobs.items():
        for job_id in ids:
            suffix = POLL_PATHS[api].format(job_id)
            counts[(api, str(job_id))] = sum(n for key, n in requests_seen.items()
                                             if key.startswith("GET ") and key.endswith(suffix))
    return counts
