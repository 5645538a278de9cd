"""Bulk job and batch states, the one evaluation of a job's status (shared by the hook's
``wait_for_job`` and the async triggers), progress reports and the Bulk errors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Mapping

from airflow_provider_salesforce_suite.core.errors import SalesforceApiError, SalesforceNotFoundError, SalesforceSuiteError
from airflow_provider_salesforce_suite.core.secrets import redact_text
from airflow_provider_salesforce_suite.io.formats import RecordFileError

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


def job_gone(error: BaseException) -> bool:
    """Whether ``error`` says the Bulk job does not exist: 2.0 answers ``404 NOT_FOUND``, 1.0
    ``InvalidJob`` "Unable to find job"."""
    if isinstance(error, SalesforceNotFoundError):
        return True
    return (isinstance(error, SalesforceApiError) and (error.error_code or "").lower() == "invalidjob"
            and "unable to find job" in (error.message or "").lower())


#: What a sensor or trigger says of a job it waits for that does not exist.
UNKNOWN_JOB = "Check the job id: waiting for a job that does not exist cannot help."


class SalesforceBulkJobPurgedError(SalesforceBulkError):
    """A Bulk job an earlier try submitted is gone: Salesforce answered that it does not exist
    (it deletes jobs, their data and results, 7 days after they finish). Nothing is sent again:
    the job may have loaded its records.

    :param job_id: the job.
    :param api: ``"2.0"`` or ``"1.0"``.
    :param known: what is known of the records it held (loaded or not).
    """

    def __init__(self, job_id: str, api: str, known: str) -> None:
        self.job_id = job_id
        self.api = api
        super().__init__(
            f"Bulk API {api} job {job_id} is gone: Salesforce answered that it does not exist. Salesforce "
            f"removes Bulk jobs, with their data and results, 7 days after they finish. {known}")


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


@dataclass(frozen=True)
class StoppedJob:
    """A job an ingest had already submitted when its input turned bad, as left by the stop.

    :param job_id: the job.
    :param records: records sent to it.
    :param state: its state after the stop (None: it could not be read).
    :param was: its state before the stop.
    :param aborted: the stop aborted it (it had not finished).
    :param processed: records processed (saved or rejected) when last read.
    :param failed: records rejected when last read.
    :param batches: 1.0: how many batches are in each state.
    """

    job_id: str
    records: int
    state: str | None
    was: str | None = None
    aborted: bool = False
    processed: int = 0
    failed: int = 0
    batches: Mapping[str, int] | None = None

    def describe(self) -> str:
        if self.state is None:
            return f"{self.job_id} ({self.records} records): state unknown (could not be read)"
        text = f"{self.job_id} ({self.records} records): {self.state}"
        if self.aborted:
            text += f" by this stop (was {self.was})"
        text += f", {self.processed} processed ({self.failed} rejected)"
        if self.batches:
            text += "; batches " + ", ".join(f"{n} {state}" for state, n in sorted(self.batches.items()))
        if not self.aborted and self.state in (BulkJobState.JOB_COMPLETE.value, BulkJobState.CLOSED.value):
            text += " - already loaded, cannot be undone"
        return text


class SalesforceBulkInputError(SalesforceBulkError, RecordFileError):
    """The input turned bad (a malformed line, a record that is not a mapping or is too large for
    an upload) after part of it was submitted. The jobs that had not finished were aborted; ``jobs``
    says what each submitted job holds and where it stands (a finished job cannot be undone).

    :param cause: the input error's text (it names the row or line).
    :param jobs: the submitted jobs after the stop.
    :param api: ``"2.0"`` or ``"1.0"``.
    :param note: what a retry does (resumable submissions).
    """

    def __init__(self, cause: str, jobs: list[StoppedJob], api: str, note: str = "") -> None:
        self.cause = cause
        self.jobs = jobs
        self.records_submitted = sum(job.records for job in jobs)
        listing = "; ".join(job.describe() for job in jobs)
        super().__init__(redact_text(
            f"{cause}. By then {self.records_submitted} records (input rows 1-{self.records_submitted}) had been "
            f"submitted; nothing after them was sent. Bulk {api} job(s): {listing}.{' ' + note if note else ''}"))
