"""Helpers shared by the coverage benchmarks (Bulk 1.0, Pardot, Desk, SOSL, CRM Analytics): the
Pardot and Desk connections of the runner's emulator, bare sessions for the floors, emulator knobs.

A case's setup runs in the case's own process, so the connections are set in ``os.environ`` there.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

import requests

from bench.bench_rest_transport import _token
from bench.runner import BenchEnv

PARDOT_BUSINESS_UNIT = "0Uv000000000001AAA"
#: The floors poll as often as our hooks are told to (``poll_interval``): same waits for all.
POLL = 0.2


def as_task(setup: Callable[[BenchEnv], dict[str, Any]]) -> Callable[[BenchEnv], dict[str, Any]]:
    """``setup``, then what a task runner has done before ``execute``: Airflow's plugins loaded (file
    writes consult them) and the provider's file layer imported (see ``bench_bulk._warm_hook``)."""

    def prepare(env: BenchEnv) -> dict[str, Any]:
        from bench.bench_bulk import _warm_hook

        prepared = setup(env)
        _warm_hook()
        return prepared

    return prepare


def admin_post(env: BenchEnv, path: str, body: dict[str, Any] | None = None) -> Any:
    """``POST /__emulator__/<path>`` (the emulator's control API); its JSON."""
    reply = requests.post(f"{env.url}/__emulator__/{path}", json=body or {}, verify=env.ca_bundle or True, timeout=120)
    reply.raise_for_status()
    return reply.json() if reply.content else None


def use_connection(conn_id: str, conn_type: str, env: BenchEnv, **extra: Any) -> str:
    """Point Airflow connection ``conn_id`` (type ``conn_type``) at the emulator in this process."""
    conn = json.loads(env.connection_json)
    conn["conn_type"] = conn_type
    conn["extra"] = {**conn.get("extra", {}), **extra}
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    return conn_id


def use_pardot_connection(env: BenchEnv) -> str:
    """``salesforce_pardot_default``: OAuth and Pardot both on the emulator, its default business unit."""
    return use_connection("salesforce_pardot_default", "salesforce_pardot", env,
                          business_unit_id=PARDOT_BUSINESS_UNIT, pardot_host=env.url)


def use_desk_connection(env: BenchEnv) -> str:
    """``salesforce_desk_default``: the emulator's Desk site, Basic auth as its admin."""
    return use_connection("salesforce_desk_default", "salesforce_desk", env)


def bearer_session(env: BenchEnv, **headers: str) -> tuple[requests.Session, str, str]:
    """A plain ``requests.Session`` with a bearer token and ``headers``; (session, instance URL, token)."""
    token, instance = _token(env)
    session = requests.Session()
    session.verify = env.ca_bundle or True
    session.headers.update({"Authorization": f"Bearer {token}", **headers})
    return session, instance, token


def pardot_session(env: BenchEnv) -> tuple[requests.Session, str]:
    """A bare session for Pardot v5 (token + Business Unit header); (session, ``<host>/api/v5``)."""
    session, _, _ = bearer_session(env, **{"Pardot-Business-Unit-Id": PARDOT_BUSINESS_UNIT})
    return session, f"{env.url}/api/v5"


def poll_until(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool],
               failed: Callable[[dict[str, Any]], bool] = lambda info: False, *, timeout: float = 600) -> dict[str, Any]:
    """Call ``fetch`` every :data:`POLL` seconds until ``done`` (return it) or ``failed`` (raise)."""
    deadline = time.monotonic() + timeout
    while True:
        info = fetch()
        if done(info):
            return info
        if failed(info) or time.monotonic() > deadline:
            raise RuntimeError(f"job did not finish: {info}")
        time.sleep(POLL)


def file_mb(path: str) -> float:
    return round(os.path.getsize(path) / 2**20, 1)


def floor_walk(env: BenchEnv, walk: Callable[[Callable[[dict[str, Any]], Any]], int], expected: int, what: str,
               output: str | None = None) -> dict[str, Any]:
    """A paging floor: ``walk(each)`` calls ``each`` on every item and returns how many; with
    ``output``, each item is written to that file (in the workdir) as a JSON line."""
    if output is None:
        seen = walk(lambda item: None)
        assert seen == expected, seen
        return {what: seen}
    path = os.path.join(env.workdir, output)
    with open(path, "w") as out:
        seen = walk(lambda item: out.write(json.dumps(item) + "\n"))
    assert seen == expected, seen
    return {what: seen, "file MB": file_mb(path)}


# -- Pardot --------------------------------------------------------------------------------------------------
PROSPECT_FIELDS = ["email", "firstName", "lastName", "company"]


def prospects_csv(env: BenchEnv, rows: int) -> str:
    """A CSV file of ``rows`` prospects (written once per run, before any clock)."""
    path = os.path.join(env.workdir, f"pardot-prospects-{rows}.csv")
    if not os.path.exists(path):
        with open(path, "w") as out:
            out.write(",".join(PROSPECT_FIELDS) + "\n")
            for n in range(rows):
                out.write(f"p{n:07d}@example.com,Pat{n},Bench,Company {n % 97}\n")
    return path


def pardot_floor_import(env: BenchEnv, path: str) -> dict[str, Any]:
    """The bare Import API: create, the whole file as one batch, ``Ready``, poll; the import's JSON."""
    session, api = pardot_session(env)
    created = session.post(f"{api}/imports", files={"input": (None, json.dumps({"operation": "Upsert",
                                                                                "object": "Prospect"}),
                                                              "application/json")}, timeout=60)
    created.raise_for_status()
    import_id = created.json()["id"]
    with open(path, "rb") as handle:
        session.post(f"{api}/imports/{import_id}/batches", files={"importFile": ("batch.csv", handle, "text/csv")},
                     timeout=600).raise_for_status()
    session.patch(f"{api}/imports/{import_id}", json={"state": "Ready"}, timeout=60).raise_for_status()
    return poll_until(lambda: session.get(f"{api}/imports/{import_id}", timeout=60).json(),
                      lambda info: info["state"] == "Complete", lambda info: info["state"] == "Failed")


def pardot_hook(env: BenchEnv) -> Any:
    """A warmed ``PardotHook`` on ``salesforce_pardot_default`` (imports, token, TLS handshake done)."""
    from airflow_provider_salesforce_suite.hooks.pardot import PardotHook

    use_pardot_connection(env)
    hook = PardotHook()
    hook.request("GET", hook.v5_path("prospects"), params={"fields": "id", "limit": 1})
    return hook


def pardot_prospects(env: BenchEnv, rows: int) -> None:
    """Make the org hold exactly ``rows`` bench prospects (a reset and one import when it does not)."""
    session, api = pardot_session(env)
    listed = session.get(f"{api}/objects/prospects", params={"fields": "id", "limit": 1000}, timeout=60).json()
    total = len(listed.get("values") or [])
    while listed.get("nextPageToken") and total <= rows:
        listed = session.get(f"{api}/objects/prospects", params={"nextPageToken": listed["nextPageToken"]},
                             timeout=60).json()
        total += len(listed.get("values") or [])
    if total != rows:
        admin_post(env, "reset")
        pardot_floor_import(env, prospects_csv(env, rows))
