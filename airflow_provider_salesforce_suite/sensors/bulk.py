"""Bulk API sensors: wait for a Bulk 2.0/1.0 job, or Bulk 1.0 batches, to finish.

Both work in ``poke``, ``reschedule`` and deferrable modes (deferrable: one check, then the wait
moves to :class:`~airflow_provider_salesforce_suite.triggers.bulk.SalesforceBulkJobTrigger`). A job
or batch that ends ``Failed`` or ``Aborted`` fails the sensor at once (no retries: waiting longer
cannot help) with Salesforce's state message.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from airflow.sdk import PokeReturnValue

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError
from airflow_provider_salesforce_suite.hooks._bulk.states import UNKNOWN_JOB, job_gone
from airflow_provider_salesforce_suite.hooks.bulk import (
    SalesforceBulkError,
    SalesforceBulkHook,
    SalesforceBulkJobPurgedError,
)
from airflow_provider_salesforce_suite.sensors._base import SalesforceJobSensorBase

if TYPE_CHECKING:
    from airflow.sdk import Context


def _fail(message: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(message)


class _SalesforceBulkSensor(SalesforceJobSensorBase):
    """The deferrable path shared by the Bulk sensors (job id, connection and hook: see the base).

    :param job_id: the Bulk job.
    """

    hook_class = SalesforceBulkHook
    _api = "2.0"
    _kind = "ingest"

    def _lines(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _batch_ids(self) -> list[str] | None:
        return None

    def poke(self, context: Context) -> PokeReturnValue:
        try:
            lines = self._lines()
        except SalesforceSuiteError as exc:
            if job_gone(exc):  # waiting cannot make it exist: fail at once, naming the job
                _fail(str(SalesforceBulkJobPurgedError(self.job_id, self._api, UNKNOWN_JOB)))
            raise
        for line in lines:
            if line["failed"]:
                what = f"Bulk job {line['job_id']}" + (f" batch {line['batch_id']}" if line["batch_id"] else "")
                _fail(f"{what} ended {line['state']}: {line['message'] or '(no message from Salesforce)'}")
        done = bool(lines) and all(line["done"] for line in lines)
        if not done:
            self.log.info("Bulk job %s not done: %s; %d records processed, %d failed", self.job_id,
                          "/".join(sorted({line["state"] for line in lines})) or "no batch yet",
                          sum(line["records_processed"] for line in lines),
                          sum(line["records_failed"] for line in lines))
        return PokeReturnValue(done, self._xcom(lines))

    def _xcom(self, lines: list[dict[str, Any]]) -> Any:
        return [{k: v for k, v in line.items() if k not in ("done", "failed")} for line in lines]

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        from airflow_provider_salesforce_suite.triggers.bulk import SalesforceBulkJobTrigger

        self.defer(trigger=SalesforceBulkJobTrigger(
            job_ids=[self.job_id], salesforce_conn_id=self.salesforce_conn_id, api=self._api, kind=self._kind,
            batch_ids=self._batch_ids(), poll_interval=self.poke_interval, timeout=self.timeout,
            api_version=self.api_version,
        ), method_name="execute_complete", timeout=dt.timedelta(seconds=self.timeout) if self.timeout else None)

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: success returns the status (XCom); failed fails at once.

        :param context: the task context.
        :param event: the trigger's payload.
        """
        if not isinstance(event, Mapping) or event.get("status") not in ("success", "failed", "timeout", "error"):
            raise SalesforceBulkError(f"Unexpected event from the Bulk trigger: {event!r}")
        if event["status"] == "failed":
            _fail(str(event.get("message")))
        if event["status"] == "timeout":
            from airflow.sdk.exceptions import AirflowSensorTimeout

            raise AirflowSensorTimeout(str(event.get("message")))
        if event["status"] == "error":
            raise SalesforceBulkError(f"Waiting for Bulk job {self.job_id} failed: {event.get('message')}")
        return self._result(event["jobs"])

    def _result(self, jobs: list[dict[str, Any]]) -> Any:
        return jobs


class SalesforceBulkJobSensor(_SalesforceBulkSensor):
    """Wait for a Bulk API 2.0 (ingest or query) or 1.0 job to finish.

    Done: a 2.0 job in ``JobComplete``; a 1.0 job with no batch queued or in progress. The XCom
    value is ``{"job_id", "state", "records_processed", "records_failed", "message"}``.

    Other parameters: ``salesforce_conn_id``, ``api_version``, ``deferrable`` and the
    ``BaseSensorOperator`` ones (``mode``, ``poke_interval``, ``timeout``, ``soft_fail``).

    :type job_id: str
    :param job_id: the job (templated, e.g. from a Bulk operator's XCom).
    :param api: ``"2.0"`` or ``"1.0"``.
    :param kind: 2.0: ``"ingest"`` or ``"query"``.
    """

    def __init__(self, *, api: str = "2.0", kind: str = "ingest", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if api not in ("1.0", "2.0"):
            raise ValueError(f"api must be '2.0' or '1.0', not {api!r}")
        if kind not in ("ingest", "query"):
            raise ValueError(f"kind must be 'ingest' or 'query', not {kind!r}")
        self._api, self._kind = api, kind

    def _lines(self) -> list[dict[str, Any]]:
        from airflow_provider_salesforce_suite.hooks.bulk import evaluate_job

        info = (self.hook.get_job(self.job_id, kind=self._kind) if self._api == "2.0"
                else self.hook.v1_get_job(self.job_id))
        status = evaluate_job(info, self._api)  # type: ignore[arg-type]
        return [{"job_id": self.job_id, "batch_id": None, "state": status.state.value, "done": status.done,
                 "failed": status.failed, "records_processed": status.records_processed,
                 "records_failed": status.records_failed, "message": status.message}]

    def _xcom(self, lines: list[dict[str, Any]]) -> Any:
        return super()._xcom(lines)[0]

    def _result(self, jobs: list[dict[str, Any]]) -> Any:
        return jobs[0]


class SalesforceBulkBatchSensor(_SalesforceBulkSensor):
    """Wait for one Bulk API 1.0 batch, or every batch of a job, to finish.

    Done: each batch ``Completed`` or ``NotProcessed`` (PK chunking's original batch). The XCom
    value is a list of ``{"job_id", "batch_id", "state", "records_processed", "records_failed", "message"}``.

    Other parameters: see ``SalesforceBulkJobSensor``.

    :type job_id: str
    :param job_id: the Bulk 1.0 job.
    :type batch_id: str | None
    :param batch_id: the batch; None waits for all the job's batches.
    """

    template_fields: Sequence[str] = ("job_id", "batch_id", "salesforce_conn_id")
    _api = "1.0"

    def __init__(self, *, batch_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id

    def _batch_ids(self) -> list[str] | None:
        return [self.batch_id] if self.batch_id else ["*"]

    def _lines(self) -> list[dict[str, Any]]:
        from airflow_provider_salesforce_suite.triggers.bulk import batch_status, job_failure

        failure = job_failure(self.job_id, self.hook.v1_get_job(self.job_id))
        if failure is not None:
            return [failure]
        batches = ([self.hook.v1_get_batch(self.job_id, self.batch_id)] if self.batch_id
                   else self.hook.v1_list_batches(self.job_id))
        return [batch_status(self.job_id, batch) for batch in batches]
