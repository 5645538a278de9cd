"""Every deferrable operator and sensor on a real triggerer: the emulator, then Airflow's API
server, scheduler, DAG processor and triggerer on SQLite with the LocalExecutor, running
``deferrable_everywhere`` (tests/operators/deferral_dags): all its tasks in parallel, each deferring
once. The same tasks run in-process (dag.test(), ``airflow dags test``) in
tests/operators/test_deferral_everywhere.py."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import PARDOT_BUSINESS_UNIT
from tests.integration.airflow_procs import (
    MetadataDB,
    ProcessSet,
    Stack,
    airflow_env,
    free_port,
    start_emulator,
    wait_for,
)
from tests.operators.deferral_support import DAG_ID, DAGS, check_results, deferring_tasks, hold_jobs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

#: Jobs take this long here: longer than a sensor's task process takes to start after its
#: upstream's on a loaded 2-core machine (12 s was not), so each sensor finds its job running and
#: defers. The tasks run in parallel: it costs this about once.
HOLD_SECONDS = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("airflow-deferral")
    home, dags = base / "home", base / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(DAGS / "deferrable_everywhere.py", dags / "deferrable_everywhere.py")
    procs = ProcessSet(home, dict(os.environ))
    try:
        emulator = start_emulator(procs, "--pubsub-port", "0")
        pardot = json.loads(emulator["connection"])
        pardot["conn_type"] = "salesforce_pardot"
        pardot["extra"] = {**pardot["extra"], "business_unit_id": PARDOT_BUSINESS_UNIT, "pardot_host": emulator["url"]}
        api_port = free_port()
        procs.env = airflow_env(home, dags, api_port, {
            "AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT": emulator["connection"],
            "AIRFLOW_CONN_SALESFORCE_PARDOT_DEFAULT": json.dumps(pardot),
            # deferred tasks hold no slot; the pairs and operators start together
            "AIRFLOW__CORE__PARALLELISM": "16",
        })
        stack = Stack(procs, emulator, MetadataDB(home / "airflow.db"), api_port, "salesforce://unused")
        stack.start_airflow()
        hold_jobs(emulator["url"], emulator["ca_bundle"] or True, HOLD_SECONDS)
        yield stack
    except BaseException:
        print(stack.diagnostics() if "stack" in locals() else procs.log_tail("emulator"))
        raise
    finally:
        procs.stop_all()


def test_every_deferrable_task_defers_and_resumes_on_a_real_triggerer(stack: Stack) -> None:
    wait_for(lambda: stack.procs.assert_running() or stack.db.rows("SELECT 1 FROM dag WHERE dag_id = ?", DAG_ID),
             timeout=180, what=f"the DAG processor to parse {DAG_ID}")
    stack.airflow("dags", "unpause", DAG_ID)
    out = stack.procs.log_dir / "out"
    stack.airflow("dags", "trigger", DAG_ID, "-c", json.dumps({"output_dir": f"file://{out}"}))

    def finished() -> str | None:
        stack.procs.assert_running()
        runs = stack.db.dag_runs(DAG_ID)
        return runs[0]["state"] if runs and runs[0]["state"] in ("success", "failed") else None

    try:
        state = wait_for(finished, timeout=300, interval=1, what=f"the {DAG_ID} run to finish")
        rows = stack.db.rows("SELECT task_id, state FROM task_instance WHERE dag_id = ?", DAG_ID)
        states = {row["task_id"]: row["state"] for row in rows}
        xcoms = {task: next(iter(stack.db.xcom_values(DAG_ID, task).values()), None) for task in deferring_tasks()}
        check_results(states, xcoms)
        assert state == "success"
        # Each task deferred: its trigger ran in the triggerer, which logs to the task's own trigger log.
        logs = stack.procs.log_dir / "logs" / f"dag_id={DAG_ID}"
        assert [task for task in deferring_tasks() if not list(logs.glob(f"*/task_id={task}/*.log.trigger.*"))] == []
    except BaseException:
        print(stack.diagnostics())
        raise
