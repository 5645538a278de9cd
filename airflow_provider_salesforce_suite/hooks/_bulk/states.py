"""Bulk job and batch states, the one evaluation of a job's status (shared by the hook's
``wait_for_job`` and the async triggers), progress reports and the Bulk errors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Mapping

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError
from airflow_provider_salesforce_suite.core.secrets import redact_text

BulkApi = Literal["1.0", "2.0"]
JobKind = Literal["ingest", "query"]


class BulkJobState(str, Enum):
    """Every state a Bulk API 2.0 job, Bulk API 1.0 job or Bulk API 1.0 batch can be in.

    2.0 jobs: ``Open``, ``UploadComplete``, ``InProgress``, ``JobComplete``, ``Failed``, ``Aborted``.
    1.0 jobs: ``Open``, ``Closed``, ``Aborted``, ``Failed``. 1.0 batches: ``Queued``, ``InProgress``,
    ``Completed``, ``Failed``, ``NotProcessed`` (also spelled ``Not Processed``).
    """

    OPEN = "Open"
    UPLOAD_COMPLETE = "UploadComplete"
    IN_PROGRESS = "InProgress"
    JOB_COMPLETE = "JobComplete"
    FAILED = "Failed"
    ABORTED = "Aborted"
    CLOSED = "Closed"
    QUEUED = "Queued"
    COMPLETED = "Completed"
    NOT_PROCESSED = "NotProcessed"

    @classmethod
    def _missing_(cls, value: object) -> BulkJobState | None:
        if isinstance(value, str):
            squashed = value.replace(" ", "").lower()
            for member in cls:
                if member.value.lower() == squashed:
                    return member
        return None

    @property
    def is_terminal(self) -> bool:
        """No further change will happen (a 1.0 ``Closed`` job may still have batches running)."""
        return self in _TERMINAL

    @property
    def is_failure(self) -> bool:
        """The job or batch ended without processing its data (``Failed`` or ``Aborted``)."""
        return self in (BulkJobState.FAILED, BulkJobState.ABORTED)


_TERMINAL = frozenset({BulkJobState.JOB_COMPLETE, BulkJobState.FAILED, BulkJobState.ABORTED,
                       BulkJobState.COMPLETED, BulkJobState.NOT_PROCESSED})


@dataclass(frozen=True)
class BulkJobProgress:
    """One poll of a job, as given to ``on_progress`` callbacks.

    :param job_id: the job.
    :param state: its state.
    :param records_processed: records processed so far (1.0 and 2.0 ingest count failures in it).
    :param records_failed: records that failed so far.
    :param elapsed: seconds since waiting started.
    :param rate: records processed per second since waiting started.
    """

    job_id: str
    state: BulkJobState
    records_processed: int
    records_failed: int
    elapsed: float
    rate: float


@dataclass(frozen=True)
class JobStatus:
    """What a job info says: its state, whether waiting is over, and whether it failed.

    :param state: the job state.
    :param done: the job will not change any more (2.0 terminal state; 1.0: no batch queued or running).
    :param failed: the job failed or was aborted.
    :param records_processed: ``numberRecordsProcessed``.
    :param records_failed: ``numberRecordsFailed``.
    :param message: Salesforce's ``errorMessage`` / ``stateMessage``, if any.
    """

    state: BulkJobState
    done: bool
    failed: bool
    records_processed: int
    records_failed: int
    message: str | None


def evaluate_job(info: Mapping[str, Any], api: BulkApi = "2.0") -> JobStatus:
    """The status of a job from its job info (``get_job`` / ``v1_get_job``): the one rule of "done".

    A 2.0 job is done in a terminal state. A 1.0 job is done when it failed or was aborted, or when
    none of its batches is queued or in progress and it has a batch or is closed.

    :param info: the job info.
    :param api: ``"2.0"`` or ``"1.0"``.
    """
    state = BulkJobState(info.get("state"))
    processed = int(info.get("numberRecordsProcessed") or 0)
    failed_records = int(info.get("numberRecordsFailed") or 0)
    message = info.get("errorMessage") or info.get("stateMessage") or None
    if api == "2.0":
        done = state.is_terminal
    else:
        running = int(info.get("numberBatchesQueued") or 0) + int(info.get("numberBatchesInProgress") or 0)
        total = int(info.get("numberBatchesTotal") or 0)
        done = state.is_failure or (running == 0 and (total > 0 or state is BulkJobState.CLOSED))
    return JobStatus(state, done, state.is_failure, processed, failed_records, message)


class SalesforceBulkError(SalesforceSuiteError):
    """Root of the Bulk API errors that are not HTTP errors."""


class SalesforceBulkJobFailedError(SalesforceBulkError):
    """A Bulk job (or 1.0 batch) ended ``Failed`` or ``Aborted``.

    :param job_id: the job.
    :param state: its final state.
    :param state_message: Salesforce's ``errorMessage`` (2.0) or ``stateMessage`` (1.0 batch).
    :param batch_id: the failed 1.0 batch, if the failure is a batch's.
    :param summary: what was done before the failure surfaced (e.g. a ``BulkIngestSummary``).
    """

    def __init__(self, job_id: str, state: BulkJobState | str, state_message: str | None = None, *,
                 batch_id: str | None = None, summary: Any = None) -> None:
        self.job_id = job_id
        self.state = BulkJobState(state)
        self.state_message = redact_text(state_message) if state_message else None
        self.batch_id = batch_id
        self.summary = summary
        what = f"Bulk job {job_id}" + (f" batch {batch_id}" if batch_id else "")
        super().__init__(f"{what} ended {self.state.value}: {self.state_message or '(no message from Salesforce)'}")


class SalesforceBulkTimeoutError(SalesforceBulkError, TimeoutError):
    """Waiting for a Bulk job exceeded its timeout (the job is left running unless the caller aborts it).

    :param job_id: the job.
    :param state: its last seen state.
    :param elapsed: seconds waited.
    """

    def __init__(self, job_id: str, state: BulkJobState | str, elapsed: float) -> None:
        self.job_id = job_id
        self.state = BulkJobState(state)
        self.elapsed = elapsed
        super().__init__(f"Bulk job {job_id} still {self.state.value} after {elapsed:.1f}s")
