"""DAG parsing imports operator, sensor, trigger and hook modules: they must stay cheap."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import airflow_provider_salesforce_suite as pkg

HEAVY = ["zeep", "simple_salesforce", "aiohttp", "aiocometd", "aiocometd_noloop", "pyarrow", "lxml", "grpc", "grpc_tools", "fastavro"]
KINDS = ["hooks", "operators", "sensors", "triggers"]


def _modules() -> list[str]:
    found = []
    for kind in KINDS:
        path = [f"{pkg.__path__[0]}/{kind}"]
        found += [f"{pkg.__name__}.{kind}.{m.name}" for m in pkgutil.iter_modules(path)]
    return found


@pytest.mark.parametrize("module", _modules())
def test_module_import_does_not_pull_heavy_clients(module: str) -> None:
    code = (
        "import importlib, json, sys\n"
        # Airflow itself may pull some of these in; measure only what our module adds.
        "import airflow.sdk\n"
        f"before = set(sys.modules)\n"
        f"importlib.import_module({module!r})\n"
        f"heavy = {HEAVY!r}\n"
        "added = set(sys.modules) - before\n"
        "print(json.dumps(sorted(m for m in added if m.split('.')[0] in heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
