"""Bulk API trigger: waits for Bulk 2.0/1.0 jobs (or 1.0 batches) on the triggerer, not on a worker.

The trigger polls with the hook's aiohttp twins (``a_get_job``, ``a_v1_get_job``,
``a_v1_get_batch``, ``a_v1_list_batches``) through the event loop's shared poller
(``_job_poller``: one hook per connection, one poll per job and interval however many triggers
wait on it) and judges each poll with the hook's one rule of "done"
(:func:`~airflow_provider_salesforce_suite.hooks._bulk.states.evaluate_job`). It fires ONE
:class:`TriggerEvent` whose payload is small, JSON-safe and never a pickled response::

    {"status": "success" | "failed" | "timeout" | "error",
     "message": str | None,           # Salesforce's stateMessage/errorMessage, or our error text
     "elapsed": float,
     "jobs": [{"job_id", "batch_id", "state", "records_processed", "records_failed", "message"}],
     "submission": {...}}             # only when given: what the operator submitted, echoed back

``failed`` means a job or batch ended ``Failed`` or ``Aborted``; ``timeout`` that ``timeout``
passed first; ``error`` that polling itself raised (auth, HTTP).

The operator's submission rides in the event, not in ``defer(kwargs=...)``: ``dag.test()`` and
``airflow dags test`` run the trigger in-process and resume the task with the event alone.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Mapping, Sequence

from airflow.triggers.base import BaseTrigger, TriggerEvent

STATUS_SUCCESS, STATUS_FAILED, STATUS_TIMEOUT, STATUS_ERROR = "success", "failed", "timeout", "error"
#: Seconds between two progress lines in the triggerer log.
PROGRESS_LOG_INTERVAL = 60.0


class SalesforceBulkJobTrigger(BaseTrigger):
    """Fire once every watched Bulk job (or 1.0 batch) is done, one failed, or ``timeout`` passed.

    :param job_ids: the jobs (one or more).
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param api: ``"2.0"`` or ``"1.0"``.
    :param kind: 2.0 only: ``"ingest"`` or ``"query"``.
    :param batch_ids: 1.0 only: watch these batches of ``job_ids[0]`` instead of whole jobs;
        ``["*"]`` watches every batch of the job.
    :param poll_interval: seconds between polls.
    :param timeout: seconds to wait in all (None: no limit).
    :param started_at: epoch seconds the wait began (kept across re-serialisation so a restarted
        triggerer does not restart the clock); default now.
    :param api_version: overrides the connection's API version.
    :param progress_interval: seconds between progress log lines.
    :param submission: a small JSON-safe mapping returned unchanged in the event (``"submission"``):
        what the operator needs to resume wherever the trigger ran.
    """

    def __init__(self, *, job_ids: Sequence[str], salesforce_conn_id: str, api: str = "2.0",
                 kind: str = "ingest", batch_ids: Sequence[str] | None = None, poll_interval: float = 5.0,
                 timeout: float | None = None, started_at: float | None = None, api_version: str | None = None,
                 progress_interval: float = PROGRESS_LOG_INTERVAL,
                 submission: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if not job_ids:
            raise ValueError("job_ids must name at least one Bulk job")
        if api not in ("1.0", "2.0"):
            raise ValueError(f"api must be '1.0' or '2.0', not {api!r}")
        if batch_ids and (api != "1.0" or len(job_ids) != 1):
            raise ValueError("batch_ids are Bulk API 1.0 batches of one job: give api='1.0' and one job id")
        self.job_ids = [str(job_id) for job_id in job_ids]
        self.salesforce_conn_id = salesforce_conn_id
        self.api = api
        self.kind = kind
        self.batch_ids = [str(batch_id) for batch_id in batch_ids] if batch_ids else None
        self.poll_interval = float(poll_interval)
        self.timeout = None if timeout is None else float(timeout)
        self.started_at = float(started_at) if started_at is not None else time.time()
        self.api_version = api_version
        self.progress_interval = float(progress_interval)
        self.submission = dict(submission) if submission is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs (ids, numbers and strings only)."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", {
            "job_ids": list(self.job_ids), "salesforce_conn_id": self.salesforce_conn_id, "api": self.api,
            "kind": self.kind, "batch_ids": list(self.batch_ids) if self.batch_ids else None,
            "poll_interval": self.poll_interval, "timeout": self.timeout, "started_at": self.started_at,
            "api_version": self.api_version, "progress_interval": self.progress_interval,
            "submission": self.submission,
        }

    def _polls(self) -> dict[tuple[str, ...], Any]:
        """The status calls this trigger watches (call key -> call on the shared hook)."""
        if self.batch_ids:
            job_id = self.job_ids[0]
            polls: dict[tuple[str, ...], Any] = {("bulk-1.0-job", job_id): lambda hook: hook.a_v1_get_job(job_id)}
            if self.batch_ids == ["*"]:
                polls[("bulk-1.0-batches", job_id)] = lambda hook: hook.a_v1_list_batches(job_id)
            for batch_id in self.batch_ids if self.batch_ids != ["*"] else ():
                polls[("bulk-1.0-batch", job_id, batch_id)] = (
                    lambda hook, batch_id=batch_id: hook.a_v1_get_batch(job_id, batch_id))
            return polls
        if self.api == "2.0":
            kind = self.kind
            return {("bulk-2.0", kind, job_id): (lambda hook, job_id=job_id: hook.a_get_job(job_id, kind=kind))
                    for job_id in self.job_ids}
        return {("bulk-1.0-job", job_id): (lambda hook, job_id=job_id: hook.a_v1_get_job(job_id))
                for job_id in self.job_ids}

    def _lines(self, results: dict[tuple[str, ...], Any]) -> list[dict[str, Any]]:
        """One status line per watched job or batch, from one round of results."""
        from airflow_provider_salesforce_suite.hooks._bulk.states import evaluate_job

        if self.batch_ids:
            job_id = self.job_ids[0]
            failure = job_failure(job_id, results[("bulk-1.0-job", job_id)])
            if failure is not None:
                return [failure]
            if self.batch_ids == ["*"]:
                batches = results[("bulk-1.0-batches", job_id)]
            else:
                batches = [results[("bulk-1.0-batch", job_id, batch_id)] for batch_id in self.batch_ids]
            return [batch_status(job_id, batch) for batch in batches]
        lines = []
        for key, info in results.items():
            status = evaluate_job(info, self.api)  # type: ignore[arg-type]
            lines.append({"job_id": key[-1], "batch_id": None, "state": status.state.value, "done": status.done,
                          "failed": status.failed, "records_processed": status.records_processed,
                          "records_failed": status.records_failed, "message": status.message})
        return lines

    def _gone(self, error: Exception) -> str:
        """What to say first when ``error`` says a watched job does not exist (purged or never was), else ``""``."""
        from airflow_provider_salesforce_suite.hooks._bulk.states import (
            UNKNOWN_JOB,
            SalesforceBulkJobPurgedError,
            job_gone,
        )

        if not job_gone(error):
            return ""
        job_id = next((job_id for job_id in self.job_ids if job_id in str(error)), ", ".join(self.job_ids))
        return f"{SalesforceBulkJobPurgedError(job_id, self.api, UNKNOWN_JOB)} "

    def _event(self, status: str, lines: list[dict[str, Any]], message: str | None = None) -> TriggerEvent:
        jobs = [{k: v for k, v in line.items() if k not in ("done", "failed")} for line in lines]
        payload = {"status": status, "message": message, "elapsed": round(time.time() - self.started_at, 3),
                   "jobs": jobs}
        if self.submission is not None:
            payload["submission"] = self.submission
        return TriggerEvent(payload)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch until done, failed or timed out; yield exactly one event.

        Polls go through the loop's shared poller: triggers waiting on the same job share its polls.
        """
        from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
        from airflow_provider_salesforce_suite.triggers._job_poller import HookSpec, job_poller, out_of_time

        spec = HookSpec(SalesforceBulkHook, self.salesforce_conn_id, self.api_version)
        last_log = 0.0
        lines: list[dict[str, Any]] = []
        async with job_poller().watching(spec, self._polls(), self.poll_interval) as rounds:
            while True:
                try:
                    lines = self._lines(await rounds.next())
                except Exception as exc:  # the operator decides; the event carries the text, not the object
                    yield self._event(STATUS_ERROR, lines, self._gone(exc) + f"{type(exc).__name__}: {exc}")
                    return
                failed = [line for line in lines if line["failed"]]
                if failed:
                    first = failed[0]
                    what = f"Bulk job {first['job_id']}" + (f" batch {first['batch_id']}" if first["batch_id"] else "")
                    yield self._event(STATUS_FAILED, lines, f"{what} ended {first['state']}: "
                                      f"{first['message'] or '(no message from Salesforce)'}")
                    return
                if lines and all(line["done"] for line in lines):
                    yield self._event(STATUS_SUCCESS, lines)
                    return
                if (waited := out_of_time(self.started_at, self.timeout, self.poll_interval)) is not None:
                    yield self._event(STATUS_TIMEOUT, lines, f"Bulk job(s) {', '.join(self.job_ids)} not done after "
                                      f"{waited:.1f}s (timeout {self.timeout:g}s)")
                    return
                if time.monotonic() - last_log >= self.progress_interval:
                    last_log = time.monotonic()
                    self.log.info("%s", progress_line(lines, time.time() - self.started_at))


def job_failure(job_id: str, info: dict[str, Any]) -> dict[str, Any] | None:
    """A failed status line when a Bulk 1.0 job itself was aborted or failed (its batches may
    then look done), else None."""
    from airflow_provider_salesforce_suite.hooks._bulk.states import evaluate_job

    status = evaluate_job(info, "1.0")
    if not status.failed:
        return None
    return {"job_id": job_id, "batch_id": None, "state": status.state.value, "done": True, "failed": True,
            "records_processed": status.records_processed, "records_failed": status.records_failed,
            "message": status.message}


def batch_status(job_id: str, batch: dict[str, Any]) -> dict[str, Any]:
    """A status line of a Bulk 1.0 ``batchInfo`` (``NotProcessed`` is done, not failed: PK chunking
    leaves the original batch so)."""
    from airflow_provider_salesforce_suite.hooks._bulk.states import BulkJobState

    state = BulkJobState(batch.get("state"))
    return {"job_id": job_id, "batch_id": batch.get("id"), "state": state.value, "done": state.is_terminal,
            "failed": state is BulkJobState.FAILED, "records_processed": int(batch.get("numberRecordsProcessed") or 0),
            "records_failed": int(batch.get("numberRecordsFailed") or 0), "message": batch.get("stateMessage") or None}


def progress_line(lines: list[dict[str, Any]], elapsed: float) -> str:
    """``"2 job(s) InProgress: 40000 processed, 12 failed, 1333 rec/s, 30s elapsed"``."""
    processed = sum(line["records_processed"] for line in lines)
    failed = sum(line["records_failed"] for line in lines)
    states = sorted({line["state"] for line in lines})
    rate = processed / elapsed if elapsed > 0 else 0.0
    return (f"{len(lines)} job(s)/batch(es) {'/'.join(states) or 'unknown'}: {processed} processed, {failed} failed, "
            f"{rate:.0f} rec/s, {elapsed:.0f}s elapsed")
