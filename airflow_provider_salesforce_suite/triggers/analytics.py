"""CRM Analytics trigger: waits for a dataset upload or a dataflow job on the triggerer.

Polls with the hook's async twins (``a_upload_status``, ``a_get_dataflow_job``) through the event
loop's shared poller (``_job_poller``: triggers waiting on one job share its polls) and judges each
poll with the hook's rules (:func:`~airflow_provider_salesforce_suite.hooks.analytics.evaluate_upload`,
``evaluate_dataflow_job``). Fires ONE event::

    {"status": "success" | "failed" | "timeout" | "error", "message": str | None,
     "elapsed": float, "kind": "upload" | "dataflow_job", "result": {"id", "status", "message"}}
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

KINDS = ("upload", "dataflow_job")


class SalesforceAnalyticsJobTrigger(BaseTrigger):
    """Fire once an upload (``InsightsExternalData``) or dataflow job is done, failed or timed out.

    :param kind: ``upload`` or ``dataflow_job``.
    :param object_id: the ``InsightsExternalData`` or dataflow job id.
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param poll_interval: seconds between polls.
    :param timeout: seconds to wait in all (None: no limit).
    :param started_at: epoch seconds the wait began (kept across re-serialisation).
    :param api_version: overrides the connection's API version.
    """

    def __init__(self, *, kind: str, object_id: str, salesforce_conn_id: str, poll_interval: float = 5.0,
                 timeout: float | None = None, started_at: float | None = None,
                 api_version: str | None = None) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.kind = kind
        self.object_id = str(object_id)
        self.salesforce_conn_id = salesforce_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout = None if timeout is None else float(timeout)
        self.started_at = float(started_at) if started_at is not None else time.time()
        self.api_version = api_version

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", {
            "kind": self.kind, "object_id": self.object_id, "salesforce_conn_id": self.salesforce_conn_id,
            "poll_interval": self.poll_interval, "timeout": self.timeout, "started_at": self.started_at,
            "api_version": self.api_version,
        }

    def _event(self, status: str, result: dict[str, Any] | None, message: str | None = None) -> TriggerEvent:
        return TriggerEvent({"status": status, "message": message, "kind": self.kind,
                             "elapsed": round(time.time() - self.started_at, 3), "result": result})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch until done, failed or timed out; yield exactly one event (polls shared per job: ``_job_poller``)."""
        from airflow_provider_salesforce_suite.hooks.analytics import (
            SalesforceAnalyticsHook,
            describe,
            evaluate_dataflow_job,
        )
        from airflow_provider_salesforce_suite.triggers._job_poller import HookSpec, job_poller, out_of_time

        object_id = self.object_id
        if self.kind == "upload":
            polls = {("analytics-upload", object_id): lambda hook: hook.a_upload_status(object_id)}
        else:
            async def dataflow_job(hook: Any) -> Any:
                return evaluate_dataflow_job(await hook.a_get_dataflow_job(object_id))

            polls = {("analytics-dataflow-job", object_id): dataflow_job}
        spec = HookSpec(SalesforceAnalyticsHook, self.salesforce_conn_id, self.api_version)
        result: dict[str, Any] | None = None
        async with job_poller().watching(spec, polls, self.poll_interval) as rounds:
            while True:
                try:
                    [status] = (await rounds.next()).values()
                except Exception as exc:  # the operator decides; the event carries the text only
                    yield self._event("error", result, f"{type(exc).__name__}: {exc}")
                    return
                result = {"id": status.id, "status": status.status, "message": status.message}
                if status.failed:
                    yield self._event("failed", result, f"{describe(self.kind, self.object_id)} ended "
                                      f"{status.status}: {status.message or '(no message from Salesforce)'}")
                    return
                if status.done:
                    yield self._event("success", result)
                    return
                if (waited := out_of_time(self.started_at, self.timeout, self.poll_interval)) is not None:
                    yield self._event("timeout", result, f"{describe(self.kind, self.object_id)} still "
                                      f"{status.status} after {waited:.1f}s (timeout {self.timeout:g}s)")
                    return
