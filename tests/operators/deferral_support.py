"""Shared by the three runs of ``deferral_dags/deferrable_everywhere.py`` (dag.test(), ``airflow
dags test``, a real triggerer): the emulator set so every job is still running when its task first
looks (so each task defers), and the checks of a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

DAGS = Path(__file__).parent / "deferral_dags"
#: The parallel shape (a real deployment) and the serial one (dag.test(), ``airflow dags test``).
DAG_ID, SERIAL_DAG_ID = "deferrable_everywhere", "deferrable_everywhere_serial"
#: Seconds every Bulk, Pardot and CRM Analytics job takes in the emulator during the runs.
HOLD_SECONDS = 2.0


def _post(url: str, verify: Any, path: str, body: dict[str, Any]) -> None:
    requests.post(f"{url.rstrip('/')}/__emulator__/{path}", json=body, verify=verify, timeout=10).raise_for_status()


def hold_jobs(url: str, verify: Any, seconds: float = HOLD_SECONDS) -> None:
    """Make every job take ``seconds`` (0: the emulator's defaults back) and select Account for CDC."""
    _post(url, verify, "bulk", {"min_in_progress_seconds": seconds})
    _post(url, verify, "pardot", {"job_seconds": seconds or 0.3})
    _post(url, verify, "analytics", {"min_queued_seconds": 0.0, "min_running_seconds": seconds})
    _post(url, verify, "streaming/config", {"cdc_entities": ["Account"] if seconds else []})


def deferring_tasks() -> tuple[str, ...]:
    """The DAG's deferring task ids (read from the DAG file, which names them)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("deferrable_everywhere_ids", DAGS / "deferrable_everywhere.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DEFERRING_TASKS


def check_results(states: dict[str, str], xcoms: dict[str, Any]) -> None:
    """Every task succeeded, and each deferring task returned what it waited for.

    :param states: task id -> final state.
    :param xcoms: task id -> its ``return_value``.
    """
    # (not a test module: pytest does not rewrite these asserts, so each names what it saw)
    failed = {task: state for task, state in states.items() if state != "success"}
    assert not failed, f"tasks not successful: {failed}"
    assert set(deferring_tasks()) <= set(states), sorted(states)
    assert xcoms["bulk_ingest"]["processed"] == 5 and xcoms["bulk_ingest"]["failed"] == 0, xcoms
    assert xcoms["bulk_query"]["records"] >= 1, xcoms
    job = xcoms["bulk_job_sensor"]
    assert job["state"] == "JobComplete" and job["records_processed"] == 3, xcoms
    assert [batch["state"] for batch in xcoms["bulk_batch_sensor"]] == ["Completed"], xcoms
    assert xcoms["pardot_import"]["state"] == "Complete" and xcoms["pardot_export"]["rows"] >= 0, xcoms
    assert xcoms["analytics_upload"]["status"] == "Completed", xcoms
    assert xcoms["analytics_dataflow"]["status"] == "Success", xcoms
    assert len(xcoms["streaming_sensor"]) == 1 and len(xcoms["pubsub_sensor"]) == 1, xcoms
