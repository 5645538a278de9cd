"""CRM Analytics: upload a CSV into a dataset through InsightsExternalData -- wall time, client CPU, peak RSS.

The floor: a bare ``requests`` session creating the ``InsightsExternalData`` header, sending the
file in 8 MB slices as ``InsightsExternalDataPart`` records (each slice a gzip member, level 1:
raw parts were slower, the emulator decoding 4x the base64), setting ``Action`` to ``Process`` and polling ``Status``.
Then ``SalesforceAnalyticsHook.upload_dataset`` (8 MB slices, gzipped when that saves 10 %) +
``wait``, and ``SalesforceAnalyticsUploadOperator`` (``durable=False``: no task state store outside
a task). All poll every 0.2 s and check the dataset's row count with one SAQL query. Default
100,000 rows (3 fields); ``SF_BENCH_ANALYTICS_ROWS`` takes a comma-separated list of sizes (e.g.
``100000,1000000`` shows the client's peak memory staying flat as the file grows 10x).
"""

from __future__ import annotations

import base64
import csv
import gzip
import json
import os
from typing import Any

import requests

from bench.coverage_support import POLL, bearer_session, poll_until
from bench.runner import BenchEnv, Case

SIZES = [int(n) for n in os.environ.get("SF_BENCH_ANALYTICS_ROWS", "100000").split(",")]
GROUP = "CRM Analytics upload: " + " and ".join(f"{n:,}" for n in SIZES) + " rows, 3 fields (emulator, loopback)"
PART_BYTES = 8 * 1024 * 1024
VERSION = "64.0"
COUNT_SAQL = 'q = load "Bench"; q = group q by all; q = foreach q generate count() as \'n\';'
METADATA = {"objects": [{"name": "Bench", "fullyQualifiedName": "Bench", "label": "Bench", "fields": [
    {"name": "Id", "fullyQualifiedName": "Bench.Id", "label": "Id", "type": "Text"},
    {"name": "Region", "fullyQualifiedName": "Bench.Region", "label": "Region", "type": "Text"},
    {"name": "Amount", "fullyQualifiedName": "Bench.Amount", "label": "Amount", "type": "Numeric",
     "precision": 18, "scale": 2}]}]}


def dataset_csv(env: BenchEnv, rows: int) -> str:
    """The input CSV (written once per run, before any clock)."""
    path = os.path.join(env.workdir, f"analytics-{rows}.csv")
    if not os.path.exists(path):
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Id", "Region", "Amount"])
            for n in range(rows):
                writer.writerow([f"R{n:08d}", ("EMEA", "AMER", "APAC")[n % 3], f"{n % 1000}.25"])
    return path


def _setup(env: BenchEnv, rows: int) -> dict[str, Any]:
    path = dataset_csv(env, rows)
    requests.post(f"{env.url}/__emulator__/reset", verify=env.ca_bundle or True, timeout=60).raise_for_status()
    session, instance, _ = bearer_session(env)
    data = f"{instance}/services/data/v{VERSION}"
    session.get(f"{data}/limits", timeout=30).raise_for_status()  # warm: TLS handshake
    return {"path": path, "session": session, "data": data}


def floor_upload_rows(session: requests.Session, data: str, path: str) -> int:
    """The bare upload: header, raw parts, ``Process``, poll; then the row count by SAQL."""

    def create(sobject: str, values: dict[str, Any]) -> str:
        reply = session.post(f"{data}/sobjects/{sobject}", json=values, timeout=600)
        reply.raise_for_status()
        return reply.json()["id"]

    header_id = create("InsightsExternalData", {
        "Format": "Csv", "EdgemartAlias": "Bench", "Operation": "Overwrite", "Action": "None",
        "MetadataJson": base64.b64encode(json.dumps(METADATA).encode()).decode()})
    with open(path, "rb") as handle:
        number = 0
        while chunk := handle.read(PART_BYTES):
            number += 1
            create("InsightsExternalDataPart", {"InsightsExternalDataId": header_id, "PartNumber": number,
                                                "DataFile": base64.b64encode(gzip.compress(chunk, 1)).decode()})
    session.patch(f"{data}/sobjects/InsightsExternalData/{header_id}", json={"Action": "Process"},
                  timeout=60).raise_for_status()
    poll_until(lambda: session.get(f"{data}/sobjects/InsightsExternalData/{header_id}", timeout=60).json(),
               lambda info: info["Status"] in ("Completed", "CompletedWithWarnings"),
               lambda info: info["Status"] in ("Failed", "NotProcessed"))
    reply = session.post(f"{data}/wave/query", json={"query": COUNT_SAQL}, timeout=60)
    reply.raise_for_status()
    return reply.json()["results"]["records"][0]["n"]


def floor_upload(env: BenchEnv, prepared: dict[str, Any], rows: int) -> dict[str, Any]:
    assert floor_upload_rows(prepared["session"], prepared["data"], prepared["path"]) == rows
    return {"rows": rows, "file MB": round(os.path.getsize(prepared["path"]) / 1e6, 1)}


def _setup_hook(env: BenchEnv, rows: int) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook
    from bench.bench_bulk import _warm_hook

    prepared = _setup(env, rows)
    hook = SalesforceAnalyticsHook()
    hook.get_resources()  # imports, authentication and the TLS handshake before the clock
    _warm_hook()  # the file layer and Airflow's plugins (reading the source consults them)
    return {**prepared, "hook": hook}


def upload(env: BenchEnv, prepared: dict[str, Any], rows: int) -> dict[str, Any]:
    hook = prepared["hook"]
    header_id = hook.upload_dataset(prepared["path"], "Bench", metadata=METADATA)
    status = hook.wait("upload", header_id, poll_interval=POLL)
    assert status.status == "Completed", status
    count = hook.query_records(COUNT_SAQL)
    assert count == [{"n": rows}], count
    return {"rows": rows, "file MB": round(os.path.getsize(prepared["path"]) / 1e6, 1)}


def operator_upload(env: BenchEnv, prepared: dict[str, Any], rows: int) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.analytics import SalesforceAnalyticsUploadOperator

    result = SalesforceAnalyticsUploadOperator(task_id="upload", source=prepared["path"], dataset="Bench",
                                               metadata=METADATA, deferrable=False, durable=False,
                                               poll_interval=POLL).execute({})
    assert result["status"] == "Completed", result
    count = prepared["hook"].query_records(COUNT_SAQL)
    assert count == [{"n": rows}], count
    return {"rows": rows, "file MB": round(os.path.getsize(prepared["path"]) / 1e6, 1)}


def _sized(setup: Any, rows: int) -> Any:
    return lambda env: setup(env, rows)


CASES = [case for rows in SIZES for case in (
    Case(f"floor: bare requests, gzip 8 MB parts, {rows:,} rows", floor_upload, {"rows": rows}, _sized(_setup, rows),
         floor=True, job=f"{rows:,} rows"),
    Case(f"upload_dataset + wait, {rows:,} rows", upload, {"rows": rows}, _sized(_setup_hook, rows), job=f"{rows:,} rows"),
    Case(f"SalesforceAnalyticsUploadOperator, {rows:,} rows", operator_upload, {"rows": rows},
         _sized(_setup_hook, rows), job=f"{rows:,} rows"),
)]
