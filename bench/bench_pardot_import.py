"""Pardot Import API: 10,000 prospects from a CSV file -- wall time, client CPU, peak RSS.

The floor: a bare ``requests`` session creating the import, uploading the file as one batch
(multipart, bytes untouched), setting it ``Ready`` and polling until ``Complete``. Then
``PardotHook.import_records`` (records read with ``csv``, re-encoded to CSV batches) waited for with
``get_import``, and ``PardotImportOperator`` (the file read through the provider's file layer;
``durable=False`` since there is no task state store outside a task). Every round imports into
an empty business unit; the emulator takes ``job_seconds`` (0.3 s) to process a job, all poll
every 0.2 s. ``ROWS`` is overridable with ``SF_BENCH_PARDOT_ROWS``.
"""

from __future__ import annotations

import csv
import os
from typing import Any

from bench.coverage_support import POLL, admin_post, as_task, pardot_floor_import, pardot_hook, poll_until, prospects_csv
from bench.runner import BenchEnv, Case

ROWS = int(os.environ.get("SF_BENCH_PARDOT_ROWS", "10000"))
GROUP = f"Pardot import: {ROWS:,} prospects, 4 fields (emulator, loopback)"


def _setup(env: BenchEnv) -> dict[str, Any]:
    path = prospects_csv(env, ROWS)
    admin_post(env, "reset")
    return {"path": path}


def floor_import(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    info = pardot_floor_import(env, prepared["path"])
    assert int(info["createdCount"]) == ROWS, info
    return {"rows": ROWS}


def _setup_hook(env: BenchEnv) -> dict[str, Any]:
    return {**_setup(env), "hook": pardot_hook(env)}


def hook_import(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    hook = prepared["hook"]
    with open(prepared["path"], newline="") as handle:
        import_id = hook.import_records(csv.DictReader(handle))
    info = poll_until(lambda: hook.get_import(import_id), lambda i: i["state"] == "Complete",
                      lambda i: i["state"] == "Failed")
    assert int(info["createdCount"]) == ROWS, info
    return {"rows": ROWS}


def operator_import(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.pardot import PardotImportOperator

    summary = PardotImportOperator(task_id="import", input_uri=prepared["path"], deferrable=False,
                                   durable=False, poll_interval=POLL).execute({})
    assert int(summary["createdCount"]) == ROWS, summary
    return {"rows": ROWS}


CASES = [
    Case("floor: bare requests, the file as one batch", floor_import, {}, _setup, floor=True),
    Case("PardotHook.import_records + get_import", hook_import, {}, _setup_hook),
    Case("PardotImportOperator (durable=False)", operator_import, {}, as_task(_setup_hook)),
]
