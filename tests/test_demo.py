"""``make demo`` end to end: the script the README's first command runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# The subprocess has its own 900 s limit; pytest's default 300 s must not cut it first on a
# loaded machine (it takes ~80 s on a quiet one).
@pytest.mark.timeout(960)
def test_demo_runs_every_example_dag_and_reports(tmp_path: Path) -> None:
    env = {**os.environ, "SALESFORCE_SUITE_DEMO_DIR": str(tmp_path / ".demo")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "example_salesforce_rest_basics: success" in done.stdout
    assert "file produced: .demo/output/accounts.jsonl (5 lines)" in done.stdout
    assert "emulator stopped" in done.stdout
