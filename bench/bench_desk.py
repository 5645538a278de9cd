"""Desk API v2 paging: every one of 3,000 customers, 100 a page (30 pages) -- wall time, client CPU.

The floor: a bare ``requests`` session (Basic auth) following ``_links.next`` page by page, and the
same writing each entry as a JSON line to a file. Then ``DeskHook.list("customers")`` (lazy, one page
at a time, ETags remembered) and ``SalesforceDeskToFileOperator`` (flattened entries to a JSON Lines
file). The emulator's Desk rate limit is raised for the run; the customers are seeded once.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import requests

from bench.coverage_support import admin_post, as_task, file_mb, floor_walk, use_desk_connection
from bench.runner import BenchEnv, Case

CUSTOMERS, PER_PAGE = 3_000, 100
GROUP = f"Desk paging: {CUSTOMERS:,} customers, {PER_PAGE} a page (emulator, loopback)"


def _session(env: BenchEnv) -> tuple[requests.Session, str]:
    from airflow_provider_salesforce_suite.emulator.config import DEFAULT_PASSWORD, DEFAULT_USERNAME

    session = requests.Session()
    session.verify = env.ca_bundle or True
    session.auth = (DEFAULT_USERNAME, DEFAULT_PASSWORD)
    return session, f"{env.url}/api/v2"


def _setup(env: BenchEnv) -> dict[str, Any]:
    admin_post(env, "desk", {"limit": 10**9})  # no 429s: paging is measured, not Desk's rate limit
    session, api = _session(env)
    have = session.get(f"{api}/customers", params={"per_page": 1}, timeout=60).json()["total_entries"]
    if have != CUSTOMERS:
        admin_post(env, "reset")
        admin_post(env, "desk", {"limit": 10**9})

        def create(n: int) -> None:
            session.post(f"{api}/customers", json={"first_name": f"Desk{n}", "last_name": "Bench",
                                                   "emails": [{"type": "work", "value": f"d{n}@example.com"}]},
                         timeout=60).raise_for_status()

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(create, range(CUSTOMERS)))
    session.get(f"{api}/users/me", timeout=30).raise_for_status()  # warm: TLS handshake
    use_desk_connection(env)
    return {"session": session, "api": api}


def _floor_pages(prepared: dict[str, Any], each: Callable[[dict[str, Any]], None]) -> int:
    session, api = prepared["session"], prepared["api"]
    url, params, seen = f"{api}/customers", {"per_page": PER_PAGE}, 0
    origin = api.removesuffix("/api/v2")
    while url:
        reply = session.get(url, params=params, timeout=60)
        reply.raise_for_status()
        page = reply.json()
        for entry in page["_embedded"]["entries"]:
            each(entry)
            seen += 1
        following = (page["_links"].get("next") or {}).get("href")
        url, params = (origin + following if following else None), None
    return seen


def floor_iterate(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    return floor_walk(env, lambda each: _floor_pages(prepared, each), CUSTOMERS, "entries")


def floor_to_file(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    return floor_walk(env, lambda each: _floor_pages(prepared, each), CUSTOMERS, "entries", "desk-floor.jsonl")


def _setup_hook(env: BenchEnv) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.desk import DeskHook

    prepared = _setup(env)
    hook = DeskHook()
    hook.get_json("users/me")  # warm: imports, TLS handshake
    return {**prepared, "hook": hook}


def hook_list(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    seen = sum(1 for _ in prepared["hook"].list("customers", per_page=PER_PAGE))
    assert seen == CUSTOMERS, seen
    return {"entries": seen}


def operator_to_file(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.desk import SalesforceDeskToFileOperator

    output = os.path.join(env.workdir, "desk-operator.jsonl")
    summary = SalesforceDeskToFileOperator(task_id="export", collection="customers", output_uri=output,
                                           per_page=PER_PAGE).execute({})
    assert summary["rows"] == CUSTOMERS, summary
    return {"entries": summary["rows"], "file MB": file_mb(output)}


CASES = [
    Case("floor: bare requests, follow _links.next", floor_iterate, {}, _setup, floor=True, job="list records"),
    Case("DeskHook.list", hook_list, {}, _setup_hook, job="list records"),
    Case("floor: bare requests -> JSON Lines file", floor_to_file, {}, _setup, floor=True, job="to a file"),
    Case("SalesforceDeskToFileOperator -> JSON Lines file", operator_to_file, {}, as_task(_setup_hook), job="to a file"),
]
