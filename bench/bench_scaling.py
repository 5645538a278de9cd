"""Scaling curves: the floor and ours at growing sizes -- wall time, client CPU and peak RSS per size,
drawn as PNG plots (``docs/img/bench/scaling-*.png``) and printed as Markdown tables.

Three curves, each a floor and our operator run in fresh processes against one emulator, the two
interleaved round by round (as ``python -m bench`` does):

* Bulk ingest: the ``bench_bulk`` cases (the first case naming a floor, and
  ``SalesforceBulkIngestOperator``), sized by ``SF_BENCH_BULK_ROWS``;
* Bulk extract: the ``bench_bulk_extract`` cases (floor, ``SalesforceBulkQueryOperator``);
* REST saves: the ``scaling_rest`` cases (Collections insert: floor, ``SalesforceCreateRecordsOperator``).

The full curve (Bulk 10k/100k/1M/5M rows, REST 1k/10k/100k records) takes about an hour on 2 cores:
``make bench-scaling``. ``--reduced`` (``make bench-scaling-reduced``) runs 10k/100k/300k and
1k/10k/30k in minutes. Sizes are overridable: ``SF_BENCH_SCALING_BULK_SIZES`` and
``SF_BENCH_SCALING_REST_SIZES`` (comma-separated). Every plot states its sizes, rounds and date.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.runner import BenchEnv, _run_case_in_child

ROOT = Path(__file__).resolve().parent.parent
FULL = {"bulk": "10000,100000,1000000,5000000", "rest": "1000,10000,100000"}
REDUCED = {"bulk": "10000,100000,300000", "rest": "1000,10000,30000"}


@dataclass(frozen=True)
class Curve:
    """One scaling curve.

    :param slug: file name part (``scaling-<slug>.png``).
    :param title: plot and table title.
    :param module: the bench module whose cases are run.
    :param size_env: the environment variable that sizes the module's cases.
    :param kind: ``bulk`` or ``rest`` (which size list applies).
    :param ours: a substring of our case's name in the module.
    :param unit: what a size counts.
    """

    slug: str
    title: str
    module: str
    size_env: str
    kind: str
    ours: str
    unit: str = "rows"

    def case_indices(self) -> tuple[int, int]:
        """(floor, ours): the first case naming a floor, and the first naming ``ours``."""
        cases = importlib.import_module(f"bench.{self.module}").CASES
        names = [case.name for case in cases]
        floor = next((i for i, name in enumerate(names) if "floor" in name), None)
        mine = next((i for i, name in enumerate(names) if self.ours in name and "floor" not in name), None)
        if floor is None or mine is None:
            raise LookupError(f"bench.{self.module}: no floor or {self.ours!r} case among {names}")
        return floor, mine


CURVES = [
    Curve("bulk-ingest", "Bulk API ingest (Account, 6 fields)", "bench_bulk", "SF_BENCH_BULK_ROWS", "bulk",
          "SalesforceBulkIngestOperator"),
    Curve("bulk-extract", "Bulk API extract to CSV (Account, 7 fields)", "bench_bulk_extract", "SF_BENCH_BULK_ROWS",
          "bulk", "SalesforceBulkQueryOperator -> CSV"),
    Curve("rest-saves", "REST saves (insert, sObject Collections x4)", "scaling_rest",
          "SF_BENCH_SCALING_REST_RECORDS", "rest", "SalesforceCreateRecordsOperator", "records"),
]


def client_cpu_s(sample: dict[str, Any]) -> float | None:
    """The case's client CPU seconds, wherever the runner or the case reported it."""
    for key in ("cpu_s", "client_cpu_s"):
        if sample.get(key) is not None:
            return float(sample[key])
    value = sample.get("metrics", {}).get("client CPU s")
    return float(value) if value is not None else None


def _summary(values: list[float | None]) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {"median": statistics.median(present), "min": min(present), "max": max(present)}


def measure(curve: Curve, sizes: list[int], rounds: int, env: BenchEnv) -> list[dict[str, Any]]:
    """Every size: both cases ``rounds`` times, interleaved; medians, minima and maxima."""
    points = []
    for size in sizes:
        os.environ[curve.size_env] = str(size)  # the children inherit it (their module reads it on import)
        floor, mine = curve.case_indices()
        samples: dict[str, list[dict[str, Any]]] = {"floor": [], "ours": []}
        for _ in range(rounds):
            for label, index in (("floor", floor), ("ours", mine)):
                samples[label].append(_run_case_in_child(curve.module, index, env))
        point: dict[str, Any] = {"size": size}
        for label, runs in samples.items():
            point[label] = {"wall_s": _summary([r["wall"] for r in runs]),
                            "cpu_s": _summary([client_cpu_s(r) for r in runs]),
                            "rss_mb": _summary([r["peak_rss_mb"] for r in runs])}
        points.append(point)
        print(f"{curve.slug} {size:,}: " + ", ".join(
            f"{label} {point[label]['wall_s']['median']:.2f} s" for label in ("floor", "ours")), flush=True)
    return points


def table(curve: Curve, points: list[dict[str, Any]]) -> str:
    """Markdown: per size, floor and ours (wall s, client CPU s, peak RSS MB; medians) and the ratios."""

    def cell(point: dict[str, Any], label: str, key: str, fmt: str) -> str:
        value = point[label][key]
        return format(value["median"], fmt) if value else "-"

    header = (f"| {curve.unit} | floor s | ours s | wall ratio | floor CPU s | ours CPU s | CPU ratio "
              "| floor RSS MB | ours RSS MB |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        wall = p["ours"]["wall_s"]["median"] / p["floor"]["wall_s"]["median"]
        cpu = (f"{p['ours']['cpu_s']['median'] / p['floor']['cpu_s']['median']:.1f}x"
               if p["ours"]["cpu_s"] and p["floor"]["cpu_s"] and p["floor"]["cpu_s"]["median"] else "-")
        lines.append(f"| {p['size']:,} | {cell(p, 'floor', 'wall_s', '.2f')} | {cell(p, 'ours', 'wall_s', '.2f')} "
                     f"| {wall:.2f}x | {cell(p, 'floor', 'cpu_s', '.2f')} | {cell(p, 'ours', 'cpu_s', '.2f')} "
                     f"| {cpu} | {cell(p, 'floor', 'rss_mb', '.0f')} | {cell(p, 'ours', 'rss_mb', '.0f')} |")
    return "\n".join(lines)


def plot(curve: Curve, points: list[dict[str, Any]], rounds: int, stamp: str, out: Path, note: str = "") -> Path:
    """Three panels (wall time, client CPU, peak RSS against size, log-log), median with min-max bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    sizes = [p["size"] for p in points]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, key, label in zip(axes, ("wall_s", "cpu_s", "rss_mb"), ("wall time (s)", "client CPU (s)", "peak RSS (MB)")):
        for who, style in (("floor", "o--"), ("ours", "s-")):
            found = [(s, p[who][key]) for s, p in zip(sizes, points) if p[who][key]]
            if not found:
                continue
            xs = [s for s, _ in found]
            mid = [v["median"] for _, v in found]
            err = [[v["median"] - v["min"] for _, v in found], [v["max"] - v["median"] for _, v in found]]
            ax.errorbar(xs, mid, yerr=err, fmt=style, capsize=3, label="floor (bare client)" if who == "floor" else "ours")
        ax.set_xscale("log")
        if key != "rss_mb":
            ax.set_yscale("log")
        ax.set_xlabel(curve.unit)
        ax.set_ylabel(label)
        ax.set_xticks(sizes, [f"{s:,}" for s in sizes], rotation=30)
        ax.xaxis.set_minor_locator(NullLocator())  # the sizes are the ticks
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{curve.title}: {', '.join(f'{s:,}' for s in sizes)} {curve.unit}{note}; median of {rounds} round(s), "
                 f"min-max bars; {stamp}, {os.cpu_count()} cores", fontsize=10)
    fig.tight_layout()
    path = out / f"scaling-{curve.slug}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reduced", action="store_true", help="the reduced curve (minutes, not an hour)")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("SF_BENCH_SCALING_ROUNDS", "3")))
    parser.add_argument("--curves", nargs="*", default=[c.slug for c in CURVES], help="slugs of the curves to run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "bench", help="where the PNGs go")
    parser.add_argument("--json", type=Path, help="also write every point here")
    args = parser.parse_args(argv)

    defaults = REDUCED if args.reduced else FULL
    sizes = {kind: [int(n) for n in os.environ.get(f"SF_BENCH_SCALING_{kind.upper()}_SIZES", default).split(",")]
             for kind, default in defaults.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    print(f"# Scaling curves ({args.rounds} rounds, medians; {stamp}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; `python -m bench.bench_scaling{' --reduced' if args.reduced else ''}`)\n")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir, \
            EmulatorServer(cert_dir=Path(workdir) / "certs", pubsub_port=0) as server:
        env = BenchEnv(url=server.url, ca_bundle=str(server.ca_bundle) if server.ca_bundle else None,
                       connection_json=server.connection_json(), workdir=workdir)
        for curve in (c for c in CURVES if c.slug in args.curves):
            points = measure(curve, sizes[curve.kind], args.rounds, env)
            results[curve.slug] = points
            path = plot(curve, points, args.rounds, stamp, args.out, " (reduced curve)" if args.reduced else "")
            print(f"\n## {curve.title} (load {os.getloadavg()[0]:.1f}; plot: {path})\n")
            print(table(curve, points) + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
