"""Pardot v5 paging: 10,000 prospects, 1,000 a page (``nextPageToken``) -- wall time, client CPU.

The floor: a bare ``requests`` session following ``nextPageToken``, and the same writing each record
as a JSON line to a file. Then ``PardotHook.iter_records`` (lazy, a page at a time) and
``PardotQueryOperator`` (records to a JSON Lines file through the provider's file layer): compare
it with the floor that writes a file. The prospects are imported once. ``ROWS`` is shared with
``bench_pardot_import`` (``SF_BENCH_PARDOT_ROWS``).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from bench.bench_pardot_import import ROWS
from bench.coverage_support import as_task, file_mb, floor_walk, pardot_hook, pardot_prospects, pardot_session
from bench.runner import BenchEnv, Case

PAGE = 1000
GROUP = f"Pardot v5 paging: {ROWS:,} prospects, {PAGE:,} a page (emulator, loopback)"
FIELDS = ["id", "email", "firstName", "lastName", "company", "updatedAt"]


def _setup(env: BenchEnv) -> dict[str, Any]:
    pardot_prospects(env, ROWS)
    session, api = pardot_session(env)
    session.get(f"{api}/objects/prospects", params={"fields": "id", "limit": 1}, timeout=60).raise_for_status()
    return {"session": session, "api": api}


def _floor_pages(prepared: dict[str, Any], each: Callable[[dict[str, Any]], Any]) -> int:
    session, url = prepared["session"], f"{prepared['api']}/objects/prospects"
    params: dict[str, Any] = {"fields": ",".join(FIELDS), "limit": PAGE}
    seen = 0
    while True:
        reply = session.get(url, params=params, timeout=60)
        reply.raise_for_status()
        body = reply.json()
        for record in body.get("values") or []:
            each(record)
            seen += 1
        if not body.get("nextPageToken"):
            return seen
        params = {"nextPageToken": body["nextPageToken"]}


def floor_iterate(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    return floor_walk(env, lambda each: _floor_pages(prepared, each), ROWS, "records")


def floor_to_file(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    return floor_walk(env, lambda each: _floor_pages(prepared, each), ROWS, "records", "pardot-floor-pages.jsonl")


def _setup_hook(env: BenchEnv) -> dict[str, Any]:
    _setup(env)
    return {"hook": pardot_hook(env)}


def hook_iterate(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    seen = sum(1 for _ in prepared["hook"].iter_records("prospects", FIELDS, page_size=PAGE))
    assert seen == ROWS, seen
    return {"records": seen}


def operator_to_file(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.pardot import PardotQueryOperator

    output = os.path.join(env.workdir, "pardot-operator-pages.jsonl")
    summary = PardotQueryOperator(task_id="query", object_name="prospects", fields=FIELDS, output_uri=output,
                                  page_size=PAGE).execute({})
    assert summary["rows"] == ROWS, summary
    return {"records": ROWS, "file MB": file_mb(output)}


CASES = [
    Case("floor: bare requests, follow nextPageToken", floor_iterate, {}, _setup, floor=True, job="list records"),
    Case("PardotHook.iter_records", hook_iterate, {}, _setup_hook, job="list records"),
    Case("floor: bare requests -> JSON Lines file", floor_to_file, {}, _setup, floor=True, job="to a file"),
    Case("PardotQueryOperator -> JSON Lines file", operator_to_file, {}, as_task(_setup_hook), job="to a file"),
]
