"""Runs one benchmark case in this fresh process and prints its measurements as JSON."""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time

from bench.runner import BenchEnv


def _peak_rss_mb() -> float:
    """This process's peak RSS. Linux keeps ``ru_maxrss`` across fork + exec (a child reports its
    parent's peak when that is higher), so read the exec'd image's own high-water mark first."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    spec = json.loads(sys.stdin.read())
    case = importlib.import_module(f"bench.{spec['module']}").CASES[spec["index"]]
    env = BenchEnv(**spec["env"])
    params = dict(case.params)
    if case.setup is not None:
        params["prepared"] = case.setup(env)
    started = time.perf_counter()
    metrics = case.run(env, **params) or {}
    wall = time.perf_counter() - started
    timed = metrics.pop("timed_s", None)  # the case clocked its own steady part (see Case)
    if timed is not None:
        wall = float(timed)
    peak_rss_mb = _peak_rss_mb()
    print(json.dumps({"wall": wall, "peak_rss_mb": peak_rss_mb, "metrics": metrics}))


if __name__ == "__main__":
    main()
