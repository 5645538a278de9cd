"""The benchmark runner's statistics (bench/stats.py, bench/runner.py's rows, bench/tables.py): every
figure a median with min and max over the rounds, latency samples pooled, the floor the best
candidate of each round."""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.runner import Case, _rows
from bench.tables import render_group


def _run(wall: float, cpu: float, **metrics: Any) -> dict[str, Any]:
    return {"wall": wall, "cpu_s": cpu, "emulator_cpu_s": 1.0, "api_calls": 10, "peak_rss_mb": 30.0,
            "metrics": metrics}


def test_every_metric_is_a_median_with_min_and_max_over_the_rounds_not_one_rounds_value() -> None:
    runs = [_run(3.0, 0.3, calls=50), _run(1.0, 0.9, calls=70), _run(2.0, 0.1, calls=10)]

    summary = stats.summarise(runs)

    assert summary["wall"] == {"median": 2.0, "min": 1.0, "max": 3.0}
    # the CPU of the median-wall round would be 0.1; the median CPU over the rounds is 0.3
    assert summary["cpu_s"] == {"median": 0.3, "min": 0.1, "max": 0.9}
    assert summary["metrics"]["calls"] == {"median": 50, "min": 10, "max": 70}


def test_latency_samples_are_pooled_across_rounds_and_the_p99_is_not_the_maximum() -> None:
    rounds = [list(range(r * 500, (r + 1) * 500)) for r in range(3)]  # 0..1499 over three rounds
    summary = stats.summarise([_run(1.0, 0.1, latency_ms=samples) for samples in rounds])

    pooled = summary["samples"]["latency_ms"]
    assert pooled["n"] == 1500
    assert pooled["p50"] == 749  # nearest rank: the 750th of 1,500
    assert pooled["p99"] == 1484  # the 1,485th, not the maximum
    assert pooled["max"] == 1499
    assert "latency_ms" not in summary["metrics"]


def test_percentile_is_nearest_rank() -> None:
    assert stats.percentile([5, 1, 3, 2, 4], 50) == 3
    assert stats.percentile(list(range(1, 101)), 99) == 99
    assert stats.percentile([7], 99) == 7


def test_the_floor_is_the_best_candidate_of_each_round_and_names_the_winner() -> None:
    one_job = [_run(2.0, 0.05), _run(2.5, 0.06)]
    split = [_run(1.5, 0.2), _run(3.0, 0.25)]

    floor = stats.floor_runs({"one job": one_job, "split": split})

    assert [run["wall"] for run in floor] == [1.5, 2.5]
    assert [run["cpu_s"] for run in floor] == [0.05, 0.06]  # each figure its own best
    assert [run["metrics"]["won"] for run in floor] == ["split", "one job"]
    assert stats.wins(floor) == {"split": 1, "one job": 1}


def test_rows_compare_each_job_to_its_floor_and_flag_a_case_that_beats_it() -> None:
    cases = [Case("bare A", dict, floor=True, job="q"), Case("bare B", dict, floor=True, job="q"),
             Case("ours", dict, job="q"), Case("too fast", dict, job="q"), Case("within noise", dict, job="q"),
             Case("build", dict, job="b"), Case("later build", dict, job="b")]
    samples = [[_run(2.0, 0.1), _run(2.2, 0.1)], [_run(1.8, 0.2), _run(2.4, 0.2)],
               [_run(2.5, 0.5), _run(2.6, 0.5)], [_run(1.0, 0.5), _run(1.1, 0.5)], [_run(1.95, 0.1)] * 2,
               [_run(0.2, 0.1)] * 2, [_run(0.1, 0.1)] * 2]

    rows = {row["name"]: row for row in _rows(cases, samples)}

    floor = rows["floor: q (best of 2 per round)"]
    assert floor["wall"] == {"median": 2.0, "min": 1.8, "max": 2.2}
    assert floor["wins"] == {"bare B": 1, "bare A": 1}
    assert rows["ours"]["baseline"] == floor["name"]
    assert rows["ours"]["beats_floor"] == {"wall": False, "cpu_s": False}
    assert rows["within noise"]["beats_floor"] == {"wall": False, "cpu_s": False}  # 1.95 against 2.0: under 5%
    assert rows["too fast"]["beats_floor"] == {"wall": True, "cpu_s": False}
    assert rows["later build"]["baseline"] == "build"  # no floor: the job's first case
    assert "beats_floor" not in rows["later build"]

    table = render_group({"command": "python -m bench x", "date": "today", "cores": 2},
                         {"title": "T", "rounds": 2, "load": stats.spread([1.0, 3.0]), "rows": list(rows.values())})
    assert "| ours | 2.55 (2.50-2.60) | 1.27x | 0.500 | 5.00x |" in table
    assert "**too fast beat the floor on wall (by more than 5%): the floor is wrong.**" in table
    assert "load average (1 min) during the group 2.00 (1.00-3.00)" in table
