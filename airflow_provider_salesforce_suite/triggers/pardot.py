"""Pardot trigger: waits for an Import or Export job on the triggerer, not on a worker.

Each poll is the hook's status call (``get_import`` / ``get_export``) run in a thread through the
event loop's shared poller (``_job_poller``: triggers waiting on one job share its polls), judged by
the one rule of "done" (:func:`~airflow_provider_salesforce_suite.hooks._pardot.jobs.job_status`).
It fires ONE :class:`TriggerEvent` with a small JSON-safe payload::

    {"status": "success" | "failed" | "timeout" | "error", "message": str | None,
     "elapsed": float, "job": {"job_id", "state", "createdCount", ... } | None}
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Mapping

from airflow.triggers.base import BaseTrigger, TriggerEvent

STATUS_SUCCESS, STATUS_FAILED, STATUS_TIMEOUT, STATUS_ERROR = "success", "failed", "timeout", "error"
JOB_KINDS = ("import", "export")


def poll_job(hook: Any, kind: str, job_id: int) -> Any:
    """The job's :class:`~airflow_provider_salesforce_suite.hooks._pardot.jobs.PardotJobStatus`.

    :param hook: a PardotHook.
    :param kind: ``import`` or ``export``.
    :param job_id: the job.
    """
    from airflow_provider_salesforce_suite.hooks._pardot.jobs import job_status

    return job_status(hook.get_import(job_id) if kind == "import" else hook.get_export(job_id))


def event_result(event: Mapping[str, Any] | None, kind: str, job_id: int) -> dict[str, Any]:
    """Validate the trigger's event; return the job summary or raise (failed fails at once).

    :param event: the event payload.
    :param kind: ``import`` or ``export``.
    :param job_id: the job.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

    if not isinstance(event, Mapping) or event.get("status") not in (STATUS_SUCCESS, STATUS_FAILED, STATUS_TIMEOUT,
                                                                       STATUS_ERROR):
        raise RuntimeError(f"Unexpected event from the Pardot trigger: {event!r}")
    if event["status"] == STATUS_FAILED:
        raise AirflowFailException(str(event.get("message")))
    if event["status"] == STATUS_TIMEOUT:
        raise AirflowSensorTimeout(str(event.get("message")))
    if event["status"] == STATUS_ERROR:
        raise RuntimeError(f"Waiting for Pardot {kind} {job_id} failed: {event.get('message')}")
    return dict(event["job"])


class PardotJobTrigger(BaseTrigger):
    """Fire once a Pardot Import or Export job is Complete, Failed, or ``timeout`` passed.

    :param kind: ``import`` or ``export``.
    :param job_id: the job.
    :param pardot_conn_id: Airflow connection id (type ``salesforce_pardot``).
    :param poll_interval: seconds between polls.
    :param timeout: seconds to wait in all (None: no limit).
    :param started_at: epoch seconds the wait began (kept across re-serialisation); default now.
    """

    def __init__(self, *, kind: str, job_id: int, pardot_conn_id: str, poll_interval: float = 5.0,
                 timeout: float | None = None, started_at: float | None = None) -> None:
        super().__init__()
        if kind not in JOB_KINDS:
            raise ValueError(f"kind must be 'import' or 'export', not {kind!r}")
        self.kind = kind
        self.job_id = int(job_id)
        self.pardot_conn_id = pardot_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout = None if timeout is None else float(timeout)
        self.started_at = float(started_at) if started_at is not None else time.time()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", {
            "kind": self.kind, "job_id": self.job_id, "pardot_conn_id": self.pardot_conn_id,
            "poll_interval": self.poll_interval, "timeout": self.timeout, "started_at": self.started_at,
        }

    def _event(self, status: str, job: dict[str, Any] | None, message: str | None = None) -> TriggerEvent:
        return TriggerEvent({"status": status, "message": message, "job": job,
                             "elapsed": round(time.time() - self.started_at, 3)})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch until done, failed or timed out; yield exactly one event (polls shared per job: ``_job_poller``)."""
        from airflow_provider_salesforce_suite.hooks.pardot import PardotHook
        from airflow_provider_salesforce_suite.triggers._job_poller import HookSpec, job_poller, out_of_time

        kind, job_id = self.kind, self.job_id
        polls = {(f"pardot-{kind}", job_id): lambda hook: asyncio.to_thread(poll_job, hook, kind, job_id)}
        spec = HookSpec(PardotHook, self.pardot_conn_id)
        summary: dict[str, Any] | None = None
        async with job_poller().watching(spec, polls, self.poll_interval) as rounds:
            while True:
                try:
                    [status] = (await rounds.next()).values()
                except Exception as exc:  # the task decides; the event carries the text, not the object
                    yield self._event(STATUS_ERROR, summary, f"{type(exc).__name__}: {exc}")
                    return
                summary = status.summary()
                if status.failed:
                    yield self._event(STATUS_FAILED, summary, f"Pardot {self.kind} {self.job_id} ended {status.state}")
                    return
                if status.done:
                    yield self._event(STATUS_SUCCESS, summary)
                    return
                if (waited := out_of_time(self.started_at, self.timeout, self.poll_interval)) is not None:
                    yield self._event(STATUS_TIMEOUT, summary, f"Pardot {self.kind} {self.job_id} still {status.state} "
                                      f"after {waited:.1f}s (timeout {self.timeout:g}s)")
                    return
