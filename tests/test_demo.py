"""``make demo`` end to end: the script the README's first command runs.

It starts the emulator and a whole Airflow deployment (scheduler, triggerer ...): an integration
test, run alone in ``make test``'s second pass so it does not compete with the parallel tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
# The summary's API column: every API the provider covers must have a DAG that succeeded.
APIS = ["REST", "Bulk 2.0 (ingest)", "Bulk 2.0 (query)", "SOAP", "CRM Analytics", "Pardot", "Desk",
        "Pub/Sub (publish)", "Streaming (sensor)", "Streaming (event)", "Pub/Sub (event)"]


def _run_demo(demo_dir: Path, code: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the demo (or ``code`` that runs it) to its end; on a timeout it gets SIGTERM (it stops its
    processes then) before the test fails."""
    env = {**os.environ, "SALESFORCE_SUITE_DEMO_DIR": str(demo_dir), 
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-c", code] if code else [sys.executable, str(ROOT / "scripts" / "demo.py")]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        pytest.fail(f"the demo took more than {timeout:.0f} s:\n{stdout[-4000:]}\n{stderr[-4000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def _leftovers(demo_dir: Path) -> list[str]:
    """Command lines of processes still running with the demo's environment (orphans)."""
    marker = f"SALESFORCE_SUITE_DEMO_DIR={demo_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


# The demo takes 3 to 5 minutes on 2 busy cores; the run gets 600 s, pytest's limit leaves room for its stop.
@pytest.mark.timeout(720)
def test_demo_runs_every_api_and_a_change_driven_run(tmp_path: Path) -> None:
    demo_dir = tmp_path / ".demo"
    done = _run_demo(demo_dir)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-4000:]
    summary = done.stdout[done.stdout.index("=== Summary"):]
    ok = {match.group(1).strip(): match.group(2) for match in
          re.finditer(r"^ok   (.{19}) (example_salesforce_\w+)", summary, re.MULTILINE)}
    assert sorted(set(APIS) - set(ok)) == [], summary
    assert "FAIL" not in summary
    # The headline: a Salesforce change started each event-driven DAG's run, through the triggerer.
    for api, dag_id in (("Streaming (event)", "example_salesforce_new_opportunity"),
                        ("Pub/Sub (event)", "example_salesforce_pubsub")):
        (line,) = [line for line in summary.splitlines() if line.startswith(f"ok   {api}")]
        assert dag_id in line and re.search(r"run asset_triggered__\S+ started by the change .+ \(\w{18}\)", line), line
    assert re.search(r"Bulk 2.0 \(ingest\)\s+example_salesforce_bulk_load\s+\d+ s  1998 of 2000 rows loaded", summary)
    assert (demo_dir / "output" / "accounts.jsonl").read_text().count("\n") == 5
    assert "all processes stopped" in done.stdout
    assert _leftovers(demo_dir) == []


FAILING_DEMO = """
import sys
import scripts.demo as demo
dag = demo.BATCH_DAGS[0]
# rest_basics' "accounts" param has a maximum of 200: Airflow rejects the run's conf.
demo.BATCH_DAGS[:] = [demo.BatchDag(dag.api, dag.dag_id, {**dag.conf, "accounts": 100000}, dag.describe)]
sys.exit(demo.main())
"""


@pytest.mark.timeout(300)
def test_demo_names_the_failed_dag_and_its_log(tmp_path: Path) -> None:
    demo_dir = tmp_path / ".demo"
    done = _run_demo(demo_dir, FAILING_DEMO, timeout=240)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-4000:]
    log = demo_dir / "logs" / "example_salesforce_rest_basics.log"
    assert f"FAILED: example_salesforce_rest_basics (REST): airflow dags test exited with 1; log: {log}" in done.stdout
    assert "accounts" in log.read_text()  # the log says why: the param's validation
    assert "Streaming (event)" not in done.stdout  # nothing after the failure ran
    assert _leftovers(demo_dir) == []
