"""Statistics over a group's rounds: a median with min and max for every figure, latency percentiles
from samples pooled across rounds, and the floor row (the best floor candidate of each round).

Pure functions over the child processes' JSON (see ``bench.child``), so they are tested without an
emulator (tests/test_bench_stats.py).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

#: The per-round figures every case has, besides its own ``metrics``.
CORE = ("wall", "cpu_s", "emulator_cpu_s", "api_calls", "peak_rss_mb")
#: Percentiles reported for pooled samples (a list-valued metric).
PERCENTILES = (50, 99)
#: Fewer pooled samples than this and a p99 is little more than the maximum: flagged in the table.
MIN_SAMPLES = 1000


def spread(values: Iterable[float]) -> dict[str, float]:
    """Median, min and max of ``values`` (one a round).

    :param values: the figure of each round.
    """
    values = list(values)
    median = statistics.median(values)
    if all(isinstance(v, int) for v in values) and float(median).is_integer():
        median = int(median)  # counts stay counts (they print without decimals)
    return {"median": median, "min": min(values), "max": max(values)}


def percentile(samples: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (the smallest sample with at least ``pct`` % at or below it).

    :param samples: the pooled samples, in any order.
    :param pct: 0 < pct <= 100.
    """
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One case's rounds as figures: every core figure and numeric metric as :func:`spread`;
    list-valued metrics pooled across rounds into percentiles and a count; other metrics (text)
    as the value most rounds had.

    :param runs: the child's JSON of each round (``wall``, ``cpu_s``, ..., ``metrics``).
    """
    figures = {key: spread(run[key] for run in runs) for key in CORE if all(run.get(key) is not None for run in runs)}
    metrics: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    keys = list(dict.fromkeys(k for run in runs for k in run["metrics"]))
    for key in keys:
        values = [run["metrics"][key] for run in runs if key in run["metrics"]]
        if all(isinstance(v, list) and all(isinstance(x, (int, float)) for x in v) for v in values):
            pooled = [float(x) for v in values for x in v]
            if pooled:
                samples[key] = {"n": len(pooled), **{f"p{p}": percentile(pooled, p) for p in PERCENTILES},
                                "max": max(pooled)}
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            metrics[key] = spread(values)
        else:
            metrics[key] = {"value": statistics.mode(str(v) for v in values)}
    return {"rounds": len(runs), **figures, "metrics": metrics, "samples": samples}


def floor_runs(candidates: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The floor's rounds: in each round, every core figure is the best (lowest) any floor candidate
    reached, and ``won`` names the candidate with the lowest wall time (whose own metrics it carries).

    The candidates ran in the same round, one after another, so each round's best is taken among
    runs that met the same machine. Wall and CPU may come from different candidates: the floor is a
    lower bound on each, not one client's run.

    :param candidates: candidate name -> its runs, one per round (same number for each).
    """
    names = list(candidates)
    rounds = len(candidates[names[0]])
    floor = []
    for r in range(rounds):
        this_round = {name: candidates[name][r] for name in names}
        best = {key: min(run[key] for run in this_round.values()) for key in CORE
                if all(run.get(key) is not None for run in this_round.values())}
        won = min(this_round, key=lambda name: this_round[name]["wall"])
        floor.append({**best, "metrics": {**this_round[won]["metrics"], "won": won}})
    return floor


def wins(floor: list[dict[str, Any]]) -> dict[str, int]:
    """How many rounds each floor candidate won (lowest wall time).

    :param floor: :func:`floor_runs`' output.
    """
    counts: dict[str, int] = {}
    for run in floor:
        counts[run["metrics"]["won"]] = counts.get(run["metrics"]["won"], 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def ratio(value: float | None, base: float | None) -> float | None:
    """``value / base``, or ``None`` when either is missing or the base is zero."""
    if value is None or not base:
        return None
    return value / base
