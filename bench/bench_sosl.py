"""SOSL: 100 searches, each finding 20 of 2,000 Accounts -- wall time, client CPU, HTTP calls.

The floor: a bare ``requests`` session sending the 100 ``GET .../search?q=FIND {...}`` calls one
after another and decoding the JSON. Then ``SalesforceRestHook.search``, ``SalesforceSearchOperator``
(rows to XCom; one operator a search, built inside the clock as a DAG's tasks would be) and
simple-salesforce ``sf.search``. The accounts are seeded once (sObject Collections) before any clock.
"""

from __future__ import annotations

from typing import Any

from bench.rest_support import bare_session, collections_insert, count, requests_total
from bench.runner import BenchEnv, Case

ACCOUNTS, TERMS = 2_000, 100
GROUP = f"SOSL: {TERMS} searches, {ACCOUNTS // TERMS} hits each among {ACCOUNTS:,} Accounts (emulator, loopback)"
SOSL = "FIND {{soslterm{n:03d}}} IN NAME FIELDS RETURNING Account(Id, Name, Industry)"
SEARCHES = [SOSL.format(n=n) for n in range(TERMS)]


def _setup(env: BenchEnv) -> dict[str, Any]:
    if count(env, "SELECT COUNT() FROM Account WHERE Name LIKE 'Sosl bench%'") != ACCOUNTS:
        collections_insert(env, "Account", ({"Name": f"Sosl bench soslterm{n % TERMS:03d} row {n}",
                                             "Industry": "Energy"} for n in range(ACCOUNTS)))
    return {}


def _measured(env: BenchEnv, search: Any) -> dict[str, Any]:
    before = requests_total(env)
    hits = sum(len(search(sosl)) for sosl in SEARCHES)
    assert hits == ACCOUNTS, hits
    return {"hits": hits, "http_calls": requests_total(env) - before}


def _setup_bare(env: BenchEnv) -> dict[str, Any]:
    session, data = bare_session(env)
    session.get(f"{data}/limits", timeout=30).raise_for_status()  # warm: TLS handshake
    return {**_setup(env), "session": session, "data": data}


def floor_search(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, data = prepared["session"], prepared["data"]

    def search(sosl: str) -> list[dict[str, Any]]:
        reply = session.get(f"{data}/search", params={"q": sosl}, timeout=60)
        reply.raise_for_status()
        return reply.json()["searchRecords"]

    return _measured(env, search)


def _setup_hook(env: BenchEnv) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    hook = SalesforceRestHook()
    hook.limits()  # warm: imports, authentication, TLS handshake
    return {**_setup(env), "hook": hook}


def hook_search(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    return _measured(env, prepared["hook"].search)


def _setup_operator(env: BenchEnv) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.rest import SalesforceSearchOperator

    SalesforceSearchOperator(task_id="warm", sosl=SEARCHES[0]).hook.limits()  # the token is cached per process
    return _setup(env)


def operator_search(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.operators.rest import SalesforceSearchOperator

    return _measured(env, lambda sosl: SalesforceSearchOperator(task_id="search", sosl=sosl).execute({}))


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    from bench.bench_bulk import simple_salesforce_client

    return {**_setup(env), "sf": simple_salesforce_client(env)}


def simple_salesforce_search(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    return _measured(env, lambda sosl: prepared["sf"].search(sosl)["searchRecords"])


CASES = [
    Case("floor: bare requests GET /search", floor_search, {}, _setup_bare, floor=True),
    Case("SalesforceRestHook.search", hook_search, {}, _setup_hook),
    Case("SalesforceSearchOperator (one a search, to XCom)", operator_search, {}, _setup_operator),
    Case("simple-salesforce sf.search", simple_salesforce_search, {}, _setup_simple_salesforce),
]
