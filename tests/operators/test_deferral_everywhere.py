"""Every deferrable operator and sensor succeeds under ``dag.test()`` and ``airflow dags test``,
where Airflow runs the trigger in-process and resumes the task with the trigger's event alone
(``defer(kwargs=...)`` is dropped). The same DAG runs on a real triggerer in
tests/integration/test_deferral_airflow.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.operators.deferral_support import DAGS, SERIAL_DAG_ID, check_results, deferring_tasks, hold_jobs

INLINE_TRIGGER = "running trigger in line"  # dag.test()'s log line for each trigger it runs in-process


@pytest.fixture
def deferral_env(airflow_db, salesforce_connection, pardot_conn, salesforce_emulator_reset, monkeypatch):
    """Both connections, the DAG folder of the test DAG, every emulator job held a few seconds."""
    pardot_conn("salesforce_pardot_default")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))  # dag.test() re-parses from the dags-folder bundle
    monkeypatch.setattr("airflow.settings.DAGS_FOLDER", str(DAGS))
    server = salesforce_emulator_reset
    assert "pubsub_endpoint" in salesforce_emulator_reset.connection_json()
    hold_jobs(server.url, server.ca_bundle or True)
    yield server
    hold_jobs(server.url, server.ca_bundle or True, 0)


def _outcome(run: Any) -> tuple[dict[str, str], dict[str, Any]]:
    tis = run.get_task_instances()
    return ({ti.task_id: ti.state for ti in tis},
            {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in tis if ti.task_id in deferring_tasks()})


def test_dag_test_runs_every_deferrable_task(deferral_env, tmp_path: Path, monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions import dag as dag_module

    # Which tasks' triggers dag.test() runs in-process (Airflow's own function, called through).
    inline = dag_module._run_inline_trigger
    deferred: list[str] = []

    def recording(trigger: Any, ti: Any) -> Any:
        deferred.append(ti.task_id)
        return inline(trigger, ti)

    monkeypatch.setattr(dag_module, "_run_inline_trigger", recording)
    dag = DagBag(dag_folder=str(DAGS)).get_dag(SERIAL_DAG_ID)
    run = dag.test(run_conf={"output_dir": f"file://{tmp_path}"})
    check_results(*_outcome(run))
    assert sorted(deferred) == sorted(deferring_tasks())  # each task deferred once, and resumed
    assert run.state == "success"


def test_airflow_dags_test_runs_every_deferrable_task(deferral_env, tmp_path: Path) -> None:
    import json

    from airflow.models import DagRun

    before = {run.run_id for run in DagRun.find(dag_id=SERIAL_DAG_ID)}
    done = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "test", SERIAL_DAG_ID, "-c",
                           json.dumps({"output_dir": f"file://{tmp_path}"})],
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    (run,) = [run for run in DagRun.find(dag_id=SERIAL_DAG_ID) if run.run_id not in before]
    assert run.state == "success", output[-5000:]
    check_results(*_outcome(run))
    assert output.count(INLINE_TRIGGER) == len(deferring_tasks())
