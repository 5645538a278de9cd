"""Markdown tables from the runner's results (``python -m bench ... --json results.json``).

``python -m bench.tables results.json [module ...]`` prints the tables the docs page uses, each
with the command, date, rounds, core count and load average of the run that produced it, so a
table in ``docs/benchmarks.md`` is regenerated from a run, never edited by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.stats import MIN_SAMPLES, ratio


def _number(value: float) -> str:
    if isinstance(value, int) or value == 0:
        return str(int(value))
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cell(figure: dict[str, Any] | None) -> str:
    """``median (min-max)`` of a :func:`bench.stats.spread`, the median alone when the rounds agree.

    :param figure: a spread, a ``{"value": ...}`` text metric, or ``None``.
    """
    if not figure:
        return ""
    if "value" in figure:
        return str(figure["value"])
    median = _number(figure["median"])
    low, high = _number(figure["min"]), _number(figure["max"])
    return median if low == high else f"{median} ({low}-{high})"


def _ratio_cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _median(row: dict[str, Any], key: str) -> float | None:
    return row[key]["median"] if key in row else None


def _context(result: dict[str, Any], group: dict[str, Any]) -> str:
    load = group["load"]
    return (f"`{result['command']}` ({result['date']}; {group['rounds']} rounds, each case in a fresh process, "
            f"rounds interleaved; {result['cores']} cores, load average (1 min) during the group "
            f"{cell(load)})")


def render_group(result: dict[str, Any], group: dict[str, Any]) -> str:
    """One group as a titled markdown table, with its run's context and the floor's winners.

    :param result: the whole run's JSON (command, date, cores).
    :param group: one entry of ``result["groups"]``.
    """
    rows = group["rows"]
    by_name = {row["name"]: row for row in rows}
    metric_keys = list(dict.fromkeys(k for row in rows for k in row["metrics"] if k != "won"))
    sample_keys = list(dict.fromkeys(k for row in rows for k in row["samples"]))
    header = ["case", "wall s", "ratio", "client CPU s", "CPU ratio", "emulator CPU s", "API calls", "peak RSS MB",
              *metric_keys]
    for key in sample_keys:
        header += [f"{key} p50", f"{key} p99", f"{key} n"]
    lines = [f"## {group['title']}", "", _context(result, group), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        base = by_name[row["baseline"]]
        cells = [
            f"**{row['name']}**" if row is base else row["name"],
            cell(row.get("wall")),
            _ratio_cell(ratio(_median(row, "wall"), _median(base, "wall"))),
            cell(row.get("cpu_s")),
            _ratio_cell(ratio(_median(row, "cpu_s"), _median(base, "cpu_s")) if (_median(base, "cpu_s") or 0) >= 0.001
                        else None),  # (no ratio to a floor that used no measurable CPU)
            cell(row.get("emulator_cpu_s")),
            cell(row.get("api_calls")),
            cell(row.get("peak_rss_mb")),
            *[cell(row["metrics"].get(k)) for k in metric_keys],
        ]
        for key in sample_keys:
            sample = row["samples"].get(key)
            if sample is None:
                cells += ["", "", ""]
            else:
                short = "" if sample["n"] >= MIN_SAMPLES else " (< 1,000)"
                cells += [_number(sample["p50"]), _number(sample["p99"]), f"{sample['n']}{short}"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    for row in rows:
        if row.get("wins"):
            won = ", ".join(f"{name} {n}/{group['rounds']}" for name, n in row["wins"].items())
            notes.append(f"{row['name']}: per round, the lowest of each figure among its candidates; "
                         f"rounds won (lowest wall): {won}.")
    for row in rows:
        broken = [k for k, v in row.get("beats_floor", {}).items() if v]
        if broken:
            notes.append(f"**{row['name']} beat the floor on {', '.join(broken)} (by more than 5%): "
                         "the floor is wrong.**")
    return "\n".join(lines + ([""] + notes if notes else []))


def render(result: dict[str, Any], modules: list[str] | None = None) -> str:
    """Every group of a run (or those whose module is in ``modules``), as the docs page shows them.

    :param result: the runner's JSON.
    :param modules: module names to keep (``bench_bulk``), all when empty.
    """
    groups = [g for g in result["groups"] if not modules or g["module"] in modules]
    return "\n\n".join(render_group(result, group) for group in groups) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tables", description=__doc__)
    parser.add_argument("results", help="the JSON written by `python -m bench ... --json PATH`")
    parser.add_argument("modules", nargs="*", help="benchmark modules to render (all by default)")
    args = parser.parse_args(argv)
    with open(args.results) as handle:
        sys.stdout.write(render(json.load(handle), args.modules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
