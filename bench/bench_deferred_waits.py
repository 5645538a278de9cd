"""Deferred waits at scale: memory per deferred task and polls per second, ``SF_BENCH_WAITS``
(default 200) triggers held at once on one event loop.

Each case runs its triggers the way Airflow's triggerer runs them: every trigger's ``run()`` is a
task on one asyncio loop in one process (the trigger-runner's shape, without its database and
supervisor, which cost the same whatever the triggers are). The emulator holds every job in
progress (``hold_jobs``), so nothing fires during the measured window.

* ``DateTimeTrigger`` (the floor): Airflow's own trigger waiting for a moment a day away; no I/O.
* ``our waits, shared``: a mix of Bulk 2.0, Bulk 1.0, CRM Analytics and Pardot job triggers, two
  triggers a job, all on the default connections: one hook per connection, one poll per job an interval.
* ``our waits, one connection each``: the same triggers, each on a connection id of its own, so no
  hook and no poll is shared (what every trigger building its own hook and polling on its own costs).

Reported: client CPU over the window (what holding the waits costs the process, not the imports),
``kib_per_task`` (the process's RSS growth from holding the triggers, divided by them;
imports and one round of one trigger per API before the first reading), ``polls_per_s`` (status GETs the emulator served
over the window), ``hooks`` (HTTP sessions the triggers held). The wall time is the time until
every trigger ran its first round (for the floor: until every task started).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from typing import Any

import requests

from bench.runner import BenchEnv, Case
from bench.stream_support import quiet_run
from bench.waits_support import APIS, hold_jobs, pardot_connection, poll_counts, start_held_jobs

WAITS = int(os.environ.get("SF_BENCH_WAITS", "200"))
POLL_INTERVAL = 2.0
WINDOW = 10.0
TASKS_PER_JOB = 2
GROUP = (f"Deferred waits: {WAITS} triggers held on one event loop, polls every {POLL_INTERVAL:g} s "
         f"(memory per task, polls per second)")


def _admin(env: BenchEnv, path: str, body: dict[str, Any] | None = None) -> Any:
    reply = requests.post(f"{env.url}/__emulator__/{path}", json=body or {}, verify=env.ca_bundle or True, timeout=60)
    reply.raise_for_status()
    return reply.json() if reply.content else None


def _hold(env: BenchEnv, held: bool) -> None:
    hold_jobs(env.url, env.ca_bundle or True, held)


def _stats(env: BenchEnv) -> dict[str, int]:
    return requests.get(f"{env.url}/__emulator__/stats", verify=env.ca_bundle or True, timeout=10).json()["requests"]


def _rss() -> int:
    """This process's resident memory now (bytes)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _connections(env: BenchEnv, count: int) -> None:
    """``sf_wait_<i>`` and ``pardot_wait_<i>``: ``count`` connection ids to the same org."""
    pardot = json.dumps(pardot_connection(env.connection_json, env.url))
    os.environ["AIRFLOW_CONN_SALESFORCE_PARDOT_DEFAULT"] = pardot
    for i in range(count):
        os.environ[f"AIRFLOW_CONN_SF_WAIT_{i}"] = env.connection_json
        os.environ[f"AIRFLOW_CONN_PARDOT_WAIT_{i}"] = pardot


def _held_jobs(env: BenchEnv) -> dict[str, list[Any]]:
    """``WAITS / TASKS_PER_JOB`` jobs, a quarter per API, all held in progress."""
    _admin(env, "reset")
    _hold(env, True)
    _connections(env, WAITS)
    return start_held_jobs(-(-WAITS // (len(APIS) * TASKS_PER_JOB)))


def _our_triggers(jobs: dict[str, list[Any]], shared: bool, count: int = WAITS) -> tuple[list[Any], int]:
    """The triggers, two a job, and how many poll loops they need (one per connection and job)."""
    from airflow_provider_salesforce_suite.triggers.analytics import SalesforceAnalyticsJobTrigger
    from airflow_provider_salesforce_suite.triggers.bulk import SalesforceBulkJobTrigger
    from airflow_provider_salesforce_suite.triggers.pardot import PardotJobTrigger

    triggers: list[Any] = []
    watches = set()
    for n in range(count):
        api, slot = APIS[n % len(APIS)], n // len(APIS)
        job_id = jobs[api][slot // TASKS_PER_JOB]
        conn = "salesforce_suite_default" if shared else f"sf_wait_{n}"
        watches.add((conn, api, job_id))
        if api in ("bulk2", "bulk1"):
            triggers.append(SalesforceBulkJobTrigger(job_ids=[job_id], salesforce_conn_id=conn, api=api[-1] + ".0",
                                                     poll_interval=POLL_INTERVAL))
        elif api == "analytics":
            triggers.append(SalesforceAnalyticsJobTrigger(kind="dataflow_job", object_id=job_id,
                                                          salesforce_conn_id=conn, poll_interval=POLL_INTERVAL))
        else:
            pardot = "salesforce_pardot_default" if shared else f"pardot_wait_{n}"
            triggers.append(PardotJobTrigger(kind="export", job_id=job_id, poll_interval=POLL_INTERVAL,
                                             pardot_conn_id=pardot))
    return triggers, len(watches)


def _polls(env: BenchEnv, jobs: dict[str, list[Any]]) -> int:
    return sum(poll_counts(_stats(env), jobs).values())


async def _hold_triggers(env: BenchEnv, triggers: list[Any], jobs: dict[str, list[Any]] | None,
                         watches: int = 0) -> dict[str, Any]:
    """Run every trigger as a task on this loop, wait until each ran its first round, measure."""
    from airflow_provider_salesforce_suite.triggers._job_poller import job_poller

    fired: list[Any] = []

    async def run(trigger: Any) -> None:
        async for event in trigger.run():
            fired.append(event)
            return

    gc.collect()
    rss_before = _rss()
    started = time.perf_counter()
    tasks = [asyncio.create_task(run(trigger)) for trigger in triggers]
    try:
        if jobs is None:
            await asyncio.sleep(0)  # every task started: a DateTimeTrigger is now asleep
        else:
            poller = job_poller()
            async with asyncio.timeout(120):  # every trigger's first round: each poll loop published once
                while len(poller.watches) < watches or any(watch.seq == 0 for watch in poller.watches.values()):
                    await asyncio.sleep(0.05)
        settled = time.perf_counter() - started
        polls_before = _polls(env, jobs) if jobs else 0
        window_started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.sleep(WINDOW)
        window = time.perf_counter() - window_started
        cpu = time.process_time() - cpu_started
        polls = (_polls(env, jobs) - polls_before) if jobs else 0
        gc.collect()
        rss_held = _rss()
        hooks = len(job_poller().hooks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert not fired, fired[:3]  # held: nothing may fire
    return {"timed_s": settled, "cpu_s": cpu, "triggers": len(triggers), "hooks": hooks,
            "polls_per_s": round(polls / window, 1),
            "kib_per_task": round((rss_held - rss_before) / len(triggers) / 1024, 1)}


def _warm(env: BenchEnv) -> dict[str, list[Any]]:
    """Held jobs; then one trigger of each API runs a round on its own loop, so every lazy import
    and one-time setup (the token, the trigger modules) is done before the first RSS reading."""
    jobs = _held_jobs(env)
    triggers, _ = _our_triggers(jobs, True, len(APIS))

    async def one_round() -> None:
        from airflow_provider_salesforce_suite.triggers._job_poller import job_poller

        runs = [asyncio.create_task(anext(trigger.run())) for trigger in triggers]
        async with asyncio.timeout(60):
            while len(job_poller().watches) < len(APIS) or any(w.seq == 0 for w in job_poller().watches.values()):
                await asyncio.sleep(0.05)
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)

    quiet_run(one_round())
    return jobs


def _setup_floor(env: BenchEnv) -> None:
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger  # noqa: F401  (imports before the clock)


def floor(env: BenchEnv, prepared: None) -> dict[str, Any]:
    import datetime as dt

    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    return quiet_run(_hold_triggers(env, [DateTimeTrigger(moment) for _ in range(WAITS)], None))


def _ours(env: BenchEnv, prepared: dict[str, list[Any]], shared: bool) -> dict[str, Any]:
    try:
        triggers, watches = _our_triggers(prepared, shared)
        return quiet_run(_hold_triggers(env, triggers, prepared, watches))
    finally:
        _hold(env, False)


def shared(env: BenchEnv, prepared: dict[str, list[Any]]) -> dict[str, Any]:
    return _ours(env, prepared, True)


def unshared(env: BenchEnv, prepared: dict[str, list[Any]]) -> dict[str, Any]:
    return _ours(env, prepared, False)


CASES = [
    Case("DateTimeTrigger (no I/O, the floor)", floor, setup=_setup_floor, floor=True),
    Case("our waits, shared poller", shared, setup=_warm),
    Case("our waits, one connection each (nothing shared)", unshared, setup=_warm),
]
