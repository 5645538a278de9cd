"""Run benchmark groups side by side and print a table per group: medians with min and max of
every figure, ratios to the group's floor, client CPU, the emulator's own CPU and the machine's load.

A benchmark module in ``bench/`` named ``bench_<name>.py`` defines ``GROUP`` (a title) and
``CASES``: a list of :class:`Case`. Each run of a case happens in a fresh Python process (so peak
RSS and CPU are that case's own), and the cases of a group are interleaved round by round, so
machine noise hits all of them alike. One emulator, in this process, serves the whole run.

**Floors.** Cases marked ``floor=True`` are candidates for the floor of their ``job``: bare clients
(plain ``requests``, ``http.client``, ``aiohttp``, gRPC stubs) doing the same work in the ways a
careful engineer would try (one job or several, serial or parallel pages). Each round, the floor row
takes the lowest wall time, client CPU, API calls and RSS any candidate reached that round (and names the
candidate with the lowest wall time); every case of the job is reported as a ratio to the floor's
medians. A job without candidates is compared to its first case. A case whose median beats the
floor's by more than 5% (wall, client CPU; for latency cases the p50) is flagged in the table: the
floor is then wrong, not the case fast.

**The clock.** Imports, seeding and the org's authentication happen in the case's ``setup``, before
the clock. Inside the clock, every case builds its client (session, ``Salesforce`` object, hook,
operator) and does the work: operators are built in the clock because a task builds its operator
in the worker, and the official provider's hook logs in in ``execute`` (one SOAP call) with no way
to do it before. A client that caches a token process-wide (ours) or is handed one (bare clients,
simple-salesforce) does not authenticate in the clock.

**Figures.** ``wall`` (the run, or the ``timed_s`` a case reports for its steady part), ``client
CPU`` (user + system CPU of the case process during the run, every thread), ``emulator CPU`` (the
emulator process's CPU during the run: its own work for the case, a bound no client can go under
while the emulator's work is serial), ``API calls`` (requests the emulator served during the run,
its control API not counted) and peak RSS, plus each case's own metrics: all as the median
with min and max over the rounds. A list-valued metric (latency samples) is pooled across rounds
and reported as p50, p99 and the number of samples (at least 1,000 for a p99 that is not the
maximum). The machine's core count and 1-minute load average (sampled before each run) are printed
beside each table; ``--json PATH`` writes everything, from which ``python -m bench.tables`` renders
the docs tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stats
from bench.tables import render_group

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One benchmarked way of doing a job.

    :param name: label in the table.
    :param run: called once per round in a fresh process with the :class:`BenchEnv`; returns
        extra metrics to report (e.g. ``{"http_calls": 50}``), each reported as the median, min and
        max over the rounds; a list of numbers (latency samples) is pooled across rounds into
        percentiles. A ``timed_s`` metric replaces the wall time of ``run`` (a case that clocks
        only its steady part, leaving out the process's one-time imports); ``cpu_s`` likewise
        replaces the client CPU measured around ``run``.
    :param params: keyword arguments for ``run``.
    :param setup: optional, called before the clock starts with the :class:`BenchEnv`; what it
        returns is passed to ``run`` as ``prepared=``.
    :param floor: a candidate for the floor of its ``job`` (a bare client; see the module docstring).
    :param job: the work the case does, when a group holds several (``"query"``, ``"create"``): a
        case is compared to the floor of its own job. Cases of one job are listed together.
    """

    name: str
    run: Callable[..., dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[BenchEnv], Any] | None = None
    floor: bool = False
    job: str = ""


@dataclass(frozen=True)
class BenchEnv:
    """What a case needs to reach the emulator started by the runner."""

    url: str
    ca_bundle: str | None
    connection_json: str
    workdir: str


def _discover(selected: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(BENCH_DIR)]) if m.name.startswith("bench_"))
    if selected:
        # a module's exact name selects just it ("bench_bulk", not also "bench_bulk_extract")
        names = [n for n in names if any(s == n or (s in n and s not in names) for s in selected)]
    return names


def _child_environment(env: BenchEnv) -> dict[str, str]:
    child = {**os.environ, "AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT": env.connection_json}
    # requests lets these override a session's own ``verify``; baseline clients (bare requests,
    # simple-salesforce) trust the emulator through their session, as their users would set it.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        child.pop(name, None)
    return child


def _run_case_in_child(module: str, index: int, env: BenchEnv) -> dict[str, Any]:
    payload = json.dumps({"module": module, "index": index, "env": env.__dict__})
    done = subprocess.run(
        [sys.executable, "-m", "bench.child"],
        input=payload,
        capture_output=True,
        text=True,
        cwd=BENCH_DIR.parent,
        env=_child_environment(env),
        check=False,  # (a failure is raised below, with the child's stderr)
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} case {index} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> float:
    return os.getloadavg()[0]


#: A case "beats" its floor when its median is this much below the floor's (less is noise).
BEAT_MARGIN = 0.05


def _beats(row: dict[str, Any], floor: dict[str, Any]) -> dict[str, bool]:
    """Which figures of ``row`` beat ``floor`` by more than :data:`BEAT_MARGIN`: wall and client CPU;
    for latency cases (pooled samples), the p50 instead of the wall (their wall is the sum of a
    round's latencies, which the slowest few events decide)."""
    def below(mine: float, theirs: float) -> bool:
        return mine < theirs * (1 - BEAT_MARGIN)

    shared = [key for key in row["samples"] if key in floor["samples"]]
    keys = ["cpu_s"] if shared else ["wall", "cpu_s"]
    beaten = {key: below(row[key]["median"], floor[key]["median"]) for key in keys if key in row and key in floor}
    beaten.update({f"{key} p50": below(row["samples"][key]["p50"], floor["samples"][key]["p50"]) for key in shared})
    return beaten


def _rows(cases: list[Case], samples: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The group's rows: per job, its floor row (when it has candidates), then its cases, each with
    the name of the row it is compared to."""
    rows: list[dict[str, Any]] = []
    for job in dict.fromkeys(case.job for case in cases):
        members = [i for i, case in enumerate(cases) if case.job == job]
        candidates = {cases[i].name: samples[i] for i in members if cases[i].floor}
        baseline = next(iter(candidates), cases[members[0]].name)
        floor_row = None
        if len(candidates) > 1:  # the best of several candidates, round by round: a row of its own
            runs = stats.floor_runs(candidates)
            baseline = f"floor{': ' + job if job else ''} (best of {len(candidates)} per round)"
            floor_row = {"name": baseline, "job": job, "baseline": baseline, "floor": True,
                         "wins": stats.wins(runs), **stats.summarise(runs)}
            floor_row["metrics"].pop("won", None)
            rows.append(floor_row)
        for i in members:
            row = {"name": cases[i].name, "job": job, "baseline": baseline, "floor_candidate": cases[i].floor,
                   **stats.summarise(samples[i])}
            if len(candidates) == 1 and cases[i].floor:
                floor_row = row
            rows.append(row)
        if floor_row is not None:
            for row in rows:
                if row["job"] == job and not row.get("floor") and not row["floor_candidate"]:
                    row["beats_floor"] = _beats(row, floor_row)
    return rows


def run_group(module: str, rounds: int, env: BenchEnv, only: list[str] | None = None) -> dict[str, Any] | None:
    """Run one benchmark module's cases, rounds interleaved; ``None`` for a standalone module.

    :param module: ``bench_<name>``.
    :param rounds: runs per case.
    :param env: the emulator.
    :param only: substrings of case names to run (every case when empty).
    """
    bench = importlib.import_module(f"bench.{module}")
    if not hasattr(bench, "CASES"):  # a standalone benchmark (its own deployments, its own rounds)
        return None
    chosen = [i for i, case in enumerate(bench.CASES) if not only or any(s in case.name for s in only)]
    if not chosen:
        return None
    cases: list[Case] = [bench.CASES[i] for i in chosen]
    samples: list[list[dict[str, Any]]] = [[] for _ in cases]
    loads = []
    for _ in range(rounds):
        for slot, index in enumerate(chosen):
            loads.append(_load())
            samples[slot].append(_run_case_in_child(module, index, env))
    return {"module": module, "title": bench.GROUP, "rounds": rounds, "load": stats.spread(loads),
            "rows": _rows(cases, samples), "raw": {case.name: runs for case, runs in zip(cases, samples)}}


def _command(argv: list[str]) -> str:
    argv = [a for i, a in enumerate(argv) if not a.startswith("--json") and not (i and argv[i - 1] == "--json")]
    knobs = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("SF_BENCH_"))
    return " ".join(filter(None, [knobs, "python -m bench", *argv]))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("select", nargs="*", help="substrings of benchmark module names to run")
    parser.add_argument("--rounds", type=int, default=5, help="runs per case (median, min and max reported)")
    parser.add_argument("--case", action="append", default=[], metavar="SUBSTRING",
                        help="run only the cases whose name contains this (repeatable)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure (and each round's) as JSON here")
    args = parser.parse_args(argv)

    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    result: dict[str, Any] = {"command": _command(argv), "cores": os.cpu_count(),
                              "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "groups": []}
    with tempfile.TemporaryDirectory() as workdir, EmulatorServer(cert_dir=Path(workdir) / "certs", pubsub_port=0) as server:
        env = BenchEnv(
            url=server.url,
            ca_bundle=str(server.ca_bundle) if server.ca_bundle else None,
            connection_json=server.connection_json(),
            workdir=workdir,
        )
        print(f"# Benchmarks ({args.rounds} rounds; {result['date']}; {result['cores']} cores)\n", flush=True)
        for module in _discover(args.select):
            group = run_group(module, args.rounds, env, args.case)
            if group is None and args.case:
                continue
            if group is None:
                print(f"({module}: run it alone, `python -m bench.{module}`)\n", flush=True)
                continue
            result["groups"].append(group)
            print(render_group(result, group) + "\n", flush=True)
            if args.json:  # after every group: a later failure keeps what ran
                Path(args.json).write_text(json.dumps(result, indent=1))
    return 0
