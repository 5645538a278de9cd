"""Fixtures of the chaos suite: the runner on the second emulator (``custom_emulator``: Account has
an External ID field, the rows' key) and the report printed at the end of the session."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from tests.chaos.harness import KEY_FIELD, RESULTS, SOBJECT, ChaosRunner, format_table, full_size

CONN_ID = "sf_chaos"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos_full: the full-size chaos cases (make chaos; skipped otherwise)")


@pytest.fixture
def chaos_runner(custom_emulator, custom_admin, monkeypatch, tmp_path: Path) -> ChaosRunner:
    """A runner on the reset second emulator (Account has the External ID the rows are keyed on);
    the connection is in this process's and the workers' environment, with the hooks' own retry
    settings as shipped (4 retries, 60 s per call): the chaos is about them."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", custom_emulator.connection_json())
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    report = os.environ.get("SF_CHAOS_REPORT")
    workdir = Path(report) / "runs" if report else tmp_path  # the full run keeps inputs, results and try logs
    return ChaosRunner(custom_admin, CONN_ID, env, _key_counter(), workdir)


def _key_counter():
    def count() -> Counter[str]:
        from airflow_provider_salesforce_suite.core.auth import clear_token_cache
        from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

        clear_token_cache()
        hook = SalesforceRestHook(CONN_ID)
        counts: Counter[str] = Counter()
        for page in hook.query_pages(f"SELECT {KEY_FIELD} FROM {SOBJECT}"):
            counts.update(record[KEY_FIELD] for record in page)
        return counts

    return count


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not RESULTS:
        return
    table = format_table(RESULTS)
    terminalreporter.write_sep("=", f"chaos ({'full' if full_size() else 'reduced'} size)")
    terminalreporter.write_line(table)
    target = os.environ.get("SF_CHAOS_REPORT")
    if target:
        out = Path(target)
        out.mkdir(parents=True, exist_ok=True)
        (out / "chaos-report.json").write_text(json.dumps([r.as_dict() for r in RESULTS], indent=2), encoding="utf-8")
        (out / "chaos-report.md").write_text(table + "\n", encoding="utf-8")
        terminalreporter.write_line(f"chaos report written to {out}/chaos-report.{{json,md}}")
