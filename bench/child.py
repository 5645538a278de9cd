"""Runs one benchmark case in this fresh process and prints its measurements as JSON: wall time,
this process's CPU (user + system, every thread) and the emulator's CPU and the API calls it served during
the run, peak RSS and the case's own metrics."""

from __future__ import annotations

import importlib
import json
import resource
import ssl
import sys
import time
import urllib.request

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


def emulator_counters(env: BenchEnv) -> tuple[float | None, int]:
    """The emulator process's CPU seconds so far and the API requests it served (its control API
    not counted), from ``GET /__emulator__/stats`` through the standard library, so that no case's
    RSS carries an HTTP client it does not use."""
    context = ssl.create_default_context(cafile=env.ca_bundle) if env.ca_bundle else None
    with urllib.request.urlopen(f"{env.url}/__emulator__/stats", context=context, timeout=30) as reply:
        body = json.load(reply)
    return body.get("process_cpu_s"), int(body["requests_total"])


def main() -> None:
    spec = json.loads(sys.stdin.read())
    case = importlib.import_module(f"bench.{spec['module']}").CASES[spec["index"]]
    env = BenchEnv(**spec["env"])
    params = dict(case.params)
    if case.setup is not None:
        params["prepared"] = case.setup(env)
    emulator_before, requests_before = emulator_counters(env)
    cpu_started = time.process_time()
    started = time.perf_counter()
    metrics = case.run(env, **params) or {}
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    emulator_after, requests_after = emulator_counters(env)
    timed = metrics.pop("timed_s", None)  # the case clocked its own steady part (see Case)
    if timed is not None:
        wall = float(timed)
    cpu = float(metrics.pop("cpu_s", cpu))
    emulator = None if emulator_before is None or emulator_after is None else emulator_after - emulator_before
    print(json.dumps({"wall": wall, "cpu_s": cpu, "emulator_cpu_s": emulator, "api_calls": requests_after - requests_before,
                      "peak_rss_mb": _peak_rss_mb(), "metrics": metrics}))


if __name__ == "__main__":
    main()
