"""The benchmark harness's own pieces that can break without a benchmark run noticing until hours
in: the scaling curves find their cases, every coverage group starts with its floor, the plots and
tables are drawn, and the end-to-end DAGs parse. (The benchmarks themselves run with ``make bench``.)"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

COVERAGE_GROUPS = ("bench_bulk_v1", "bench_bulk_v1_query", "bench_sosl", "bench_desk", "bench_pardot_import",
                   "bench_pardot_export", "bench_pardot_paging", "bench_analytics", "bench_analytics_saql")


def test_scaling_curves_find_a_floor_and_our_operator_in_their_modules() -> None:
    from bench.bench_scaling import CURVES

    for curve in CURVES:
        names = [case.name for case in importlib.import_module(f"bench.{curve.module}").CASES]
        floor, ours = curve.case_indices()
        assert "floor" in names[floor] and curve.ours in names[ours] and floor != ours, (curve.slug, names)


@pytest.mark.parametrize("module", COVERAGE_GROUPS)
def test_every_coverage_group_is_measured_against_its_floor_first(module: str) -> None:
    cases = importlib.import_module(f"bench.{module}").CASES
    assert len(cases) >= 2 and "floor" in cases[0].name, [case.name for case in cases]


def test_scaling_plot_and_table_show_every_size(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from bench.bench_scaling import CURVES, plot, table

    def point(size: int, wall: float) -> dict:
        figures = {"wall_s": {"median": wall, "min": wall * 0.9, "max": wall * 1.1},
                   "cpu_s": {"median": wall / 10, "min": wall / 11, "max": wall / 9},
                   "rss_mb": {"median": 130.0, "min": 129.0, "max": 131.0}}
        return {"size": size, "floor": figures, "ours": {**figures, "wall_s": {"median": 2 * wall, "min": wall,
                                                                               "max": 3 * wall}}}

    points = [point(10_000, 0.5), point(100_000, 4.0)]
    path = plot(CURVES[0], points, 3, "2026-01-01 00:00 UTC", tmp_path, " (reduced curve)")
    assert path.read_bytes().startswith(b"\x89PNG") and path.name == "scaling-bulk-ingest.png"
    rows = table(CURVES[0], points).splitlines()
    assert rows[2].startswith("| 10,000 | 0.50 | 1.00 | 2.00x") and rows[3].startswith("| 100,000 |"), rows


def test_end_to_end_dags_parse_and_defer_where_they_can(tmp_path: Path, monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from bench.bench_airflow import DAG_FILE, TASKS

    monkeypatch.setenv("SF_BENCH_E2E_DIR", str(tmp_path))
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    for case, task_id in TASKS.items():
        task = bag.dags[f"bench_e2e_{case}"].get_task(task_id)
        if case.startswith("bulk"):
            assert task.deferrable is True
        assert not list(tmp_path.iterdir())  # parsing wrote nothing
