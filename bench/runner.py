"""Run benchmark groups side by side and print a table of medians and ratios.

A benchmark module in ``bench/`` named ``bench_<name>.py`` defines ``GROUP`` (a title) and
``CASES``: a list of :class:`Case`. The first case of a group is its baseline; every case's
median wall time is reported as a ratio to it. Each run of a case happens in a fresh Python
process (so peak RSS is that case's own), and the cases of a group are interleaved round by
round, so machine noise hits all of them alike. One emulator serves the whole run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    """One benchmarked way of doing a job.

    :param name: label in the table.
    :param run: called once per round in a fresh process with the :class:`BenchEnv`; returns
        extra metrics to report (e.g. ``{"http_calls": 50}``), reported from the median round. A
        ``timed_s`` metric replaces the wall time of ``run`` (a case that clocks only its steady
        part, leaving out the process's one-time imports).
    :param params: keyword arguments for ``run``.
    :param setup: optional, called before the clock starts with the :class:`BenchEnv`; what it
        returns is passed to ``run`` as ``prepared=``.
    """

    name: str
    run: Callable[..., dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[BenchEnv], Any] | None = None


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
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} case {index} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(title: str, rows: list[dict[str, Any]]) -> str:
    extra_keys = sorted({k for row in rows for k in row["metrics"]})
    header = ["case", "median s", "ratio", "peak RSS MB", *extra_keys]
    lines = [f"## {title}", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = rows[0]["wall"]
    for row in rows:
        cells = [
            row["name"],
            f"{row['wall']:.3f}",
            f"{row['wall'] / base:.2f}x" if base else "-",
            f"{row['rss']:.0f}",
            *[str(row["metrics"].get(k, "")) for k in extra_keys],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("select", nargs="*", help="substrings of benchmark module names to run")
    parser.add_argument("--rounds", type=int, default=5, help="runs per case (median reported)")
    args = parser.parse_args(argv)

    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    with tempfile.TemporaryDirectory() as workdir, EmulatorServer(cert_dir=Path(workdir) / "certs", pubsub_port=0) as server:
        env = BenchEnv(
            url=server.url,
            ca_bundle=str(server.ca_bundle) if server.ca_bundle else None,
            connection_json=server.connection_json(),
            workdir=workdir,
        )
        print(f"# Benchmarks ({args.rounds} rounds, medians; {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores)\n")
        for module in _discover(args.select):
            bench = importlib.import_module(f"bench.{module}")
            if not hasattr(bench, "CASES"):  # a standalone benchmark (its own deployments, its own rounds)
                print(f"({module}: run it alone, `python -m bench.{module}`)\n")
                continue
            samples: list[list[dict[str, Any]]] = [[] for _ in bench.CASES]
            for _ in range(args.rounds):
                for index in range(len(bench.CASES)):
                    samples[index].append(_run_case_in_child(module, index, env))
            rows = [
                {
                    "name": case.name,
                    "wall": statistics.median(s["wall"] for s in runs),
                    "rss": statistics.median(s["peak_rss_mb"] for s in runs),
                    "metrics": sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]["metrics"],
                }
                for case, runs in zip(bench.CASES, samples)
            ]
            print(_table(bench.GROUP, rows) + "\n")
    return 0
