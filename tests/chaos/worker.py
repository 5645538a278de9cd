"""One try of a chaos task, run the way an Airflow worker runs it: a fresh process builds the
operator, gives it the task instance's context (same dag_id/run_id/task_id, this try's number,
the task state store kept between tries) and calls ``execute``. The outcome goes to a JSON file;
a try killed with SIGKILL writes none.

    python -m tests.chaos.worker <spec.json>

The spec: ``{"operator": "bulk"|"rest", "kwargs": {...}, "store": path, "outcome": path,
"ti": {"dag_id", "run_id", "task_id", "try_number"}}``; the connection comes from the
environment (``AIRFLOW_CONN_<ID>``), as on a worker.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tests.chaos.store import FileTaskStateStore


class ChaosTaskInstance:
    """The task instance attributes the operators read, and an ``xcom_push`` that keeps values.

    :param dag_id: the DAG id.
    :param run_id: the run id.
    :param task_id: the task id.
    :param try_number: this try's number (1 for the first).
    """

    map_index = -1

    def __init__(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> None:
        self.dag_id, self.run_id, self.task_id, self.try_number = dag_id, run_id, task_id, try_number
        self.stats_tags: dict[str, str] = {}
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def build_operator(operator: str, kwargs: dict[str, Any]) -> Any:
    """The operator of a chaos case.

    :param operator: ``bulk`` (SalesforceBulkIngestOperator) or ``rest`` (SalesforceSaveRecordsOperator).
    :param kwargs: the operator's arguments.
    """
    if operator == "bulk":
        from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator

        return SalesforceBulkIngestOperator(task_id="chaos_load", deferrable=False, **kwargs)
    if operator == "rest":
        from airflow_provider_salesforce_suite.operators.rest import SalesforceSaveRecordsOperator

        return SalesforceSaveRecordsOperator(task_id="chaos_load", **kwargs)
    raise ValueError(f"unknown chaos operator {operator!r}")


def run_try(spec: dict[str, Any]) -> dict[str, Any]:
    """Execute the operator once; the outcome ``{"status", "summary", "error_class", "error", "seconds"}``
    (status ``success``, ``failed``, or ``failed_no_retry`` for ``AirflowFailException``).

    :param spec: see the module doc.
    """
    ti = ChaosTaskInstance(**spec["ti"])
    context = {"ti": ti, "run_id": ti.run_id, "params": {}, "task_state_store": FileTaskStateStore(spec["store"])}
    started = time.monotonic()
    try:
        summary = build_operator(spec["operator"], spec["kwargs"]).execute(context)
    except Exception as exc:  # an Airflow worker marks the try failed and schedules the next...
        from airflow.sdk.exceptions import AirflowFailException

        status = "failed_no_retry" if isinstance(exc, AirflowFailException) else "failed"  # ...unless told not to
        return {"status": status, "summary": getattr(exc, "summary", None) or ti.pushed.get("summary"),
                "error_class": type(exc).__name__, "error": str(exc)[:4000],
                "traceback": traceback.format_exc()[-4000:], "seconds": time.monotonic() - started}
    return {"status": "success", "summary": summary, "error_class": None, "error": None,
            "seconds": time.monotonic() - started}


def _tokens() -> list[str]:
    """The access tokens this try holds, so the harness can check that none reached the log."""
    from airflow_provider_salesforce_suite.core import auth

    return [token.access_token for token in auth._CACHE.values()]


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    outcome = {**run_try(spec), "tokens": _tokens()}
    Path(spec["outcome"]).write_text(json.dumps(outcome, default=str), encoding="utf-8")
    return 0 if outcome["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
