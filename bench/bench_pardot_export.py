"""Pardot Export API: 10,000 prospects to a CSV file -- wall time, client CPU, peak RSS.

The floor: a bare ``requests`` session creating a ``prospect_byUpdatedAt`` export, polling until
``Complete`` and streaming each result file to disk (bytes untouched). Then ``PardotHook``
(``create_export``, ``get_export``, ``iter_export_records`` written with ``csv``) and
``PardotExportOperator`` (rows through the provider's file layer; ``durable=False``). The prospects
are imported once. ``ROWS`` is shared with ``bench_pardot_import`` (``SF_BENCH_PARDOT_ROWS``).
"""

from __future__ import annotations

import csv
import os
from typing import Any

from bench.bench_pardot_import import ROWS
from bench.coverage_support import POLL, as_task, file_mb, pardot_hook, pardot_prospects, pardot_session, poll_until
from bench.runner import BenchEnv, Case

GROUP = f"Pardot export: {ROWS:,} prospects, 4 fields, to CSV (emulator, loopback)"
PROCEDURE = "prospect_byUpdatedAt"
FIELDS = ["id", "email", "firstName", "lastName"]
ARGUMENTS = {"updatedAfter": "2000-01-01T00:00:00+00:00"}


def _setup(env: BenchEnv) -> dict[str, Any]:
    pardot_prospects(env, ROWS)
    return {}


def floor_export(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, api = pardot_session(env)
    created = session.post(f"{api}/exports", json={"fields": FIELDS, "procedure": {"name": PROCEDURE,
                                                                                   "arguments": ARGUMENTS}},
                           timeout=60)
    created.raise_for_status()
    export_id = created.json()["id"]
    info = poll_until(lambda: session.get(f"{api}/exports/{export_id}", timeout=60).json(),
                      lambda i: i["state"] == "Complete", lambda i: i["state"] == "Failed")
    output, lines = os.path.join(env.workdir, "pardot-floor-export.csv"), 0
    with open(output, "wb") as out:
        for ref in info["resultRefs"]:
            with session.get(ref if ref.startswith("http") else env.url + ref, stream=True, timeout=600) as reply:
                reply.raise_for_status()
                for chunk in reply.iter_content(1 << 16):
                    lines += chunk.count(b"\n")
                    out.write(chunk)
    assert lines == ROWS + len(info["resultRefs"]), lines  # a header a file
    return {"rows": ROWS, "file MB": file_mb(output)}


def _setup_hook(env: BenchEnv) -> dict[str, Any]:
    return {**_setup(env), "hook": pardot_hook(env)}


def hook_export(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    hook = prepared["hook"]
    export_id = hook.create_export(PROCEDURE, FIELDS, ARGUMENTS)
    poll_until(lambda: hook.get_export(export_id), lambda i: i["state"] == "Complete",
               lambda i: i["state"] == "Failed")
    output, rows = os.path.join(env.workdir, "pardot-hook-export.csv"), 0
    with open(output, "w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for record in hook.iter_export_records(export_id):
            writer.writerow(record)
            rows += 1
    assert rows == ROWS, rows
    return {"rows": rows, "file MB": file_mb(output)}


def operator_export(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.pardot import PardotExportOperator

    output = os.path.join(env.workdir, "pardot-operator-export.csv")
    summary = PardotExportOperator(task_id="export", procedure=PROCEDURE, fields=FIELDS, arguments=ARGUMENTS,
                                   output_uri=output, deferrable=False, durable=False,
                                   poll_interval=POLL).execute({})
    assert summary["rows"] == ROWS, summary
    return {"rows": ROWS, "file MB": file_mb(output)}


CASES = [
    Case("floor: bare requests, result files streamed", floor_export, {}, _setup, floor=True),
    Case("PardotHook create/get/iter_export_records -> csv", hook_export, {}, _setup_hook),
    Case("PardotExportOperator -> CSV (durable=False)", operator_export, {}, as_task(_setup_hook)),
]
