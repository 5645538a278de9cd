"""CRM Analytics: upload a CSV into a dataset through InsightsExternalData -- wall time and peak RSS.

``SalesforceAnalyticsHook.upload_dataset`` reads the file in 8 MB slices, gzips each into one
``InsightsExternalDataPart``, sets ``Action`` to ``Process`` and polls until the emulator has
built the dataset version. Two sizes, 100,000 and 1,000,000 rows (3 fields), show that the
client's peak memory stays flat as the file grows 10x. Sizes are overridable with
``SF_BENCH_ANALYTICS_ROWS`` (comma-separated).
"""

from __future__ import annotations

import csv
import os
from typing import Any

import requests

from bench.runner import BenchEnv, Case

SIZES = [int(n) for n in os.environ.get("SF_BENCH_ANALYTICS_ROWS", "100000,1000000").split(",")]
GROUP = "CRM Analytics upload: " + " vs ".join(f"{n:,}" for n in SIZES) + " rows, 3 fields (emulator, loopback)"
METADATA = {"objects": [{"name": "Bench", "fullyQualifiedName": "Bench", "label": "Bench", "fields": [
    {"name": "Id", "fullyQualifiedName": "Bench.Id", "label": "Id", "type": "Text"},
    {"name": "Region", "fullyQualifiedName": "Bench.Region", "label": "Region", "type": "Text"},
    {"name": "Amount", "fullyQualifiedName": "Bench.Amount", "label": "Amount", "type": "Numeric",
     "precision": 18, "scale": 2}]}]}


def _setup(env: BenchEnv, rows: int) -> dict[str, Any]:
    path = os.path.join(env.workdir, f"analytics-{rows}.csv")
    if not os.path.exists(path):
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Id", "Region", "Amount"])
            for n in range(rows):
                writer.writerow([f"R{n:08d}", ("EMEA", "AMER", "APAC")[n % 3], f"{n % 1000}.25"])
    requests.post(f"{env.url}/__emulator__/reset", verify=env.ca_bundle or True, timeout=60).raise_for_status()
    from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook

    hook = SalesforceAnalyticsHook()
    hook.get_resources()  # imports, authentication and the TLS handshake before the clock
    return {"path": path, "hook": hook}


def upload(env: BenchEnv, prepared: dict[str, Any], rows: int) -> dict[str, Any]:
    hook = prepared["hook"]
    header_id = hook.upload_dataset(prepared["path"], "Bench", metadata=METADATA)
    status = hook.wait("upload", header_id, poll_interval=0.2)
    assert status.status == "Completed", status
    count = hook.query_records('q = load "Bench"; q = group q by all; q = foreach q generate count() as \'n\';')
    assert count == [{"n": rows}], count
    return {"rows": rows, "file_mb": round(os.path.getsize(prepared["path"]) / 1e6, 1)}


CASES = [Case(f"upload_dataset {rows:,} rows", upload, {"rows": rows},
              (lambda rows: lambda env: _setup(env, rows))(rows)) for rows in SIZES]
