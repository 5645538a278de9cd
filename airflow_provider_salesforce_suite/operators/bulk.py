"""Bulk API operators: load any number of records (Bulk 2.0, or 1.0 on request) and extract query
results to CSV/JSON Lines/Parquet files, in constant memory, without holding a worker while
Salesforce works (``deferrable=True``) and without loading data twice after a worker crash
(:class:`~airflow.sdk.ResumableJobMixin`).

Lifecycle of both operators: submit the job(s) -> check once -> wait (on the worker, logging
progress; or deferred to :class:`~airflow_provider_salesforce_suite.triggers.bulk.SalesforceBulkJobTrigger`)
-> fetch the results and write the files (``wait_for_completion=False``: submit, return the job
ids, and leave the waiting to a sensor). The submitted job ids are kept in the task state
store before waiting, so a retry reconnects to them; an ingest also notes each upload in
``results_dir/_chunks`` as it goes, so a retry after a crash mid-submission resumes it.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from functools import cached_property
from itertools import chain
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from airflow.sdk import BaseOperator, ResumableJobMixin

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError
from airflow_provider_salesforce_suite.operators._defer import default_deferrable
from airflow_provider_salesforce_suite.hooks.bulk import (
    BulkJobProgress,
    SalesforceBulkError,
    SalesforceBulkHook,
    SalesforceBulkJobFailedError,
    SalesforceBulkJobPurgedError,
    SalesforceBulkTimeoutError,
    evaluate_job,
)
from airflow_provider_salesforce_suite.hooks._bulk.states import job_gone
from airflow_provider_salesforce_suite.links import SalesforceBulkJobLink, bulk_job_url

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_salesforce_suite.io import CsvTextRows

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = SalesforceBulkHook.default_conn_name
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
#: Seconds between two progress lines while waiting on the worker.
DEFAULT_PROGRESS_INTERVAL = 60.0
_EVENT_STATUSES = ("success", "failed", "timeout", "error")


class SalesforceBulkRecordsFailedError(SalesforceSuiteError):
    """A Bulk load failed: a job failed (Salesforce's message is in the text) or more records were
    rejected than ``max_failed_records`` allows. ``summary`` is the XCom summary (also pushed
    under the key ``summary``).

    :param message: the error text.
    :param summary: the summary.
    """

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class SalesforceBulkWaitTimeoutError(SalesforceBulkError, TimeoutError):
    """``timeout`` passed before the Bulk job(s) finished; the text says whether they were aborted."""


class _ProgressLog:
    """An ``on_progress`` callback logging at most once per ``interval`` seconds (and the final poll)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}

    def __call__(self, progress: BulkJobProgress) -> None:
        now = time.monotonic()
        if progress.state.is_terminal or now - self._last.get(progress.job_id, -1e9) >= self.interval:
            self._last[progress.job_id] = now
            log.info("Bulk job %s %s: %d records processed, %d failed, %.0f rec/s, %.0fs elapsed",
                     progress.job_id, progress.state.value, progress.records_processed, progress.records_failed,
                     progress.rate, progress.elapsed)


class _SalesforceBulkOperator(ResumableJobMixin, BaseOperator):
    """Connection, hook, waiting (sync, deferred), timeouts and the resumable plumbing.

    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param api_version: overrides the connection's API version.
    :param api: ``"2.0"`` (default) or ``"1.0"``.
    :param poll_interval: seconds between job status polls.
    :param timeout: seconds to wait for the job(s) (None: no limit).
    :param abort_on_timeout: abort the job(s) when ``timeout`` passes (else they are left running).
    :param deferrable: wait on the triggerer, not on a worker; default ``[operators] default_deferrable``.
    :param progress_interval: seconds between progress log lines.
    :param durable: keep the job ids in the task state store so a retry reconnects (ResumableJobMixin).
    :param wait_for_completion: False: submit, return the job ids (XCom, also under the key
        ``job_ids``) and finish without waiting; pair with
        :class:`~airflow_provider_salesforce_suite.sensors.bulk.SalesforceBulkJobSensor` downstream.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id",)
    operator_extra_links = (SalesforceBulkJobLink(),)
    _kind = "ingest"

    def __init__(self, *, salesforce_conn_id: str = DEFAULT_CONN_ID, api_version: str | None = None,
                 api: str = "2.0", poll_interval: float = 5.0, timeout: float | dt.timedelta | None = None,
                 abort_on_timeout: bool = False, deferrable: bool | None = None,
                 progress_interval: float = DEFAULT_PROGRESS_INTERVAL, wait_for_completion: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if api not in ("1.0", "2.0"):
            raise ValueError(f"api must be '2.0' or '1.0', not {api!r}")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.salesforce_conn_id = salesforce_conn_id
        self.api_version = api_version
        self.api = api
        self.poll_interval = poll_interval
        self.timeout = timeout.total_seconds() if isinstance(timeout, dt.timedelta) else timeout
        self.abort_on_timeout = abort_on_timeout
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.progress_interval = progress_interval
        self.wait_for_completion = wait_for_completion

    @cached_property
    def hook(self) -> SalesforceBulkHook:
        """The Bulk hook on ``salesforce_conn_id``."""
        return SalesforceBulkHook(salesforce_conn_id=self.salesforce_conn_id, api_version=self.api_version)

    def execute(self, context: Context) -> Any:
        return self.execute_resumable(context)

    # -- job status ------------------------------------------------------------------------------------------
    def _job_ids(self, submission: Mapping[str, Any]) -> list[str]:
        return list(submission["job_ids"])

    def _infos(self, submission: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Each submitted job's status; a job Salesforce no longer has raises
        :class:`SalesforceBulkJobPurgedError` (nothing is submitted again: it may have loaded)."""
        out = []
        for job_id in self._job_ids(submission):
            try:
                info = (self.hook.get_job(job_id, kind=self._kind) if submission["api"] == "2.0"
                        else self.hook.v1_get_job(job_id))
            except SalesforceSuiteError as exc:
                if job_gone(exc):
                    raise SalesforceBulkJobPurgedError(job_id, submission["api"], self._purged_note(submission)) from exc
                raise
            out.append((job_id, evaluate_job(info, submission["api"])))
        return out

    def _purged_note(self, submission: Mapping[str, Any]) -> str:
        """What is known of a submission one of whose jobs is gone (for the error)."""
        held = (f" ({submission['records']} input records; the submission journal is in "
                f"{submission['results_dir']}/_chunks)" if "records" in submission else "")
        return (f"An earlier try of this task submitted job(s) {', '.join(self._job_ids(submission))}{held} and "
                "the task state store still names them; what the gone job did can no longer be read. Not submitting "
                "again (that could load its records twice): check the org, then clear the task's state to "
                "start afresh.")

    def _persist_job_link(self, context: Context, external_id: Any) -> None:
        """The "Salesforce Bulk job" link to the first job (once per submission)."""
        if not external_id or getattr(self, "_linked", None) == external_id["job_ids"]:
            return
        self._linked = external_id["job_ids"]
        first = external_id["job_ids"][0]
        SalesforceBulkJobLink.persist(context, lambda: bulk_job_url(self.hook.instance_url, first))

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """``InProgress`` (reconnect), ``Done`` (collect, never resubmit) or ``FailedNothingLoaded``
        (every job failed before processing a record: safe to submit again)."""
        try:
            statuses = [status for _, status in self._infos(external_id)]
        except SalesforceBulkJobPurgedError as exc:
            if self._kind != "query":
                raise
            self.log.warning("%s A query loads nothing: running it again", exc)
            return "FailedNothingLoaded"
        if not all(status.done for status in statuses):
            return "InProgress"
        if all(status.failed and status.records_processed == 0 for status in statuses):
            return "FailedNothingLoaded"
        return "Done"

    def is_job_active(self, status: str) -> bool:
        return status == "InProgress"

    def is_job_succeeded(self, status: str) -> bool:
        # "Done" includes jobs that failed after processing records: collecting their results (and
        # failing the task with Salesforce's message) is right; submitting the data again is not.
        return status == "Done"

    # -- waiting ---------------------------------------------------------------------------------------------
    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        """Wait for the submitted job(s): on the worker, or deferred when ``deferrable`` and not done
        yet; then collect the results (see :meth:`get_job_result`). Not with ``wait_for_completion=False``."""
        self._persist_job_link(context, external_id)
        if not self.wait_for_completion:
            return self.get_job_result(external_id, context)
        if external_id is None or (self.deferrable and all(status.done for _, status in self._infos(external_id))):
            return self.get_job_result(external_id, context)
        if self.deferrable:
            from airflow_provider_salesforce_suite.triggers.bulk import SalesforceBulkJobTrigger

            self.log.info("Deferring: waiting for Bulk job(s) %s on the triggerer", self._job_ids(external_id))
            # The submission rides in the trigger's event: dag.test() resumes with the event alone.
            self.defer(trigger=SalesforceBulkJobTrigger(
                job_ids=self._job_ids(external_id), salesforce_conn_id=self.salesforce_conn_id,
                api=external_id["api"], kind=self._kind, poll_interval=self.poll_interval, timeout=self.timeout,
                api_version=self.api_version, progress_interval=self.progress_interval,
                submission=dict(external_id),
            ), method_name="execute_complete")
        started = time.monotonic()
        progress = _ProgressLog(self.progress_interval)
        for job_id in self._job_ids(external_id):
            left = None if self.timeout is None else max(self.timeout - (time.monotonic() - started), 0.0)
            try:
                self.hook.wait_for_job(job_id, api=external_id["api"], kind=self._kind,
                                       poll_interval=self.poll_interval, timeout=left, on_progress=progress)
            except SalesforceBulkJobFailedError:
                continue  # the results say which records; get_job_result fails the task with the message
            except SalesforceBulkTimeoutError as exc:
                self._timed_out(external_id, str(exc))
        # The mixin returns this value when it reconnects to a running job and calls get_job_result
        # after it otherwise: collect here once, and return the same result both ways.
        return self.get_job_result(external_id, context)

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        """Fetch the results of the finished job(s) and write the files (once per submission); with
        ``wait_for_completion=False``, the submitted job ids instead."""
        import json

        collect = self._collect if self.wait_for_completion else self._submitted
        key = json.dumps(external_id, sort_keys=True, default=str)
        collected = getattr(self, "_collected", None)
        if collected is None or collected[0] != key:
            self._collected = collected = (key, collect(external_id, context))
        return collected[1]

    def _collect(self, external_id: Any, context: Context) -> Any:
        raise NotImplementedError

    def _submitted(self, external_id: Any, context: Context) -> dict[str, Any]:
        """The submit-only result: what was submitted, its job ids also pushed under ``job_ids``
        (for templates: ``ti.xcom_pull(task_ids=..., key="job_ids")``)."""
        job_ids = self._job_ids(external_id) if external_id else []
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="job_ids", value=job_ids)
        self.log.info("wait_for_completion=False: Bulk job(s) %s submitted; not waiting for them", job_ids)
        return {"api": self.api, "job_ids": job_ids}

    def _timed_out(self, submission: Mapping[str, Any], message: str) -> None:
        if self.abort_on_timeout:
            for job_id in self._job_ids(submission):
                try:
                    if submission["api"] == "2.0":
                        self.hook.abort_job(job_id, kind=self._kind)
                    else:
                        self.hook.v1_abort_job(job_id)
                except SalesforceSuiteError as exc:  # already finished: nothing to abort
                    self.log.warning("Could not abort Bulk job %s: %s", job_id, exc)
            what = "aborted"
        else:
            what = "left running (a retry reconnects to them)"
        raise SalesforceBulkWaitTimeoutError(
            f"{message}; timeout={self.timeout:g}s passed: Bulk job(s) {', '.join(self._job_ids(submission))} {what}")

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None,
                         submission: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: validate its event, then fetch results and write files.

        :param context: the task context.
        :param event: the trigger's payload (see :mod:`..triggers.bulk`); it carries the submission.
        :param submission: the submitted job(s), from a deferral made by an earlier version (which
            passed them in ``defer(kwargs=...)``).
        """
        if not isinstance(event, Mapping) or event.get("status") not in _EVENT_STATUSES:
            raise SalesforceBulkError(f"Unexpected event from the Bulk trigger: {event!r}")
        submission = submission or event.get("submission") or self._stored_submission(context)
        if not isinstance(submission, Mapping) or not submission.get("job_ids"):
            raise SalesforceBulkError("execute_complete needs the submitted job ids: the trigger's event carries "
                                      f"none and the task state store holds none under {self.external_id_key!r}")
        if event["status"] == "timeout":
            self._timed_out(submission, str(event.get("message")))
        if event["status"] == "error":
            raise SalesforceBulkError(f"Waiting for Bulk job(s) failed: {event.get('message')}")
        # success or failed: the results (and Salesforce's message) are fetched from the jobs themselves
        return self.get_job_result(submission, context)

    def _stored_submission(self, context: Context) -> Any:
        """The submission the mixin kept in the task state store (durable), for an event without one."""
        store = context.get("task_state_store") if self.durable else None
        return store.get(self.external_id_key) if store is not None else None


def _non_empty(records: Iterator[Mapping[str, Any]] | CsvTextRows) -> Iterable[Mapping[str, Any]] | CsvTextRows | None:
    """``records`` unchanged in content, or None when there is not a single record."""
    from airflow_provider_salesforce_suite.io import CsvTextRows

    if isinstance(records, CsvTextRows):
        return None if records.peek() is None else records
    first = next(records, None)
    return None if first is None else chain([first], records)


def _run_part(context: Context) -> str:
    from airflow_provider_salesforce_suite.operators.rest import _run_part as run_part

    return run_part(context)


class SalesforceBulkIngestOperator(_SalesforceBulkOperator):
    """Insert, update, upsert, delete or hard-delete records with the Bulk API (2.0 by default, 1.0
    with ``api="1.0"``), from a CSV/JSON Lines/Parquet file streamed from any ``ObjectStoragePath``
    location or a list of dicts (XCom), in constant memory.

    Records are encoded to CSV and split into uploads (2.0: one job per <= 100 MB upload; 1.0: one
    job, batches of <= 10,000 records); a CSV file's rows are passed through as text. Result files
    are written to ``results_dir`` (uploads in input order; within one, Salesforce's result order):
    ``successful.<fmt>`` (``sf__Id``, ``sf__Created``, ``sf__InputRow``, fields), ``failed.<fmt>``
    (``sf__Id``, ``sf__Error``, ``sf__InputRow``, fields) and ``unprocessed.<fmt>``. The return
    value (XCom) is the summary ``{"api", "operation", "sobject", "job_ids", "records",
    "processed", "failed", "unprocessed", "successful_uri", "failed_uri", "unprocessed_uri",
    "results_dir"}`` with ``processed + failed + unprocessed == records``. The task fails when a
    job failed (with Salesforce's message), more than ``max_failed_records`` records were
    rejected, or any record was left unprocessed (the summary is pushed under ``summary`` first).
    Empty input creates no job. With ``wait_for_completion=False`` the return value is the
    submission ``{"api", "operation", "sobject", "job_ids", "records", "results_dir"}`` instead.

    :param sobject: the sObject, e.g. ``Account``.
    :param operation: ``insert``, ``update``, ``upsert``, ``delete`` or ``hardDelete``.
    :param records: a list of dicts (e.g. from XCom). Exactly one of ``records`` and ``source``.
    :param source: URI, path or ``ObjectStoragePath`` of a ``.csv``, ``.jsonl``/``.ndjson`` or
        ``.parquet`` file (``.gz`` for csv/jsonl); read lazily.
    :param source_format: the source's format when its suffix does not tell.
    :param external_id_field: upsert: the external id field.
    :param results_dir: where the result files go; default
        ``<failed_records_base_uri>/<dag_id>/<run_id>/<task_id>/`` (the ``[salesforce_suite]
        failed_records_base_uri`` option, else a temp directory), the same on every try.
    :param results_format: ``csv``, ``jsonl``, ``parquet`` (``csv.gz``, ``jsonl.gz``).
    :param max_failed_records: rejected records tolerated before the task fails (default 0).
    :param max_concurrent_jobs: 2.0: at most this many jobs unfinished at once; a further upload
        waits on the worker for one to finish. Default None: every upload goes in at once (one job
        per upload) and Salesforce queues them. Bulk 1.0 batches follow ``concurrency_mode``.
    :param max_records_per_upload: most records per upload (2.0 default 50,000; 1.0 at most 10,000).
    :param max_upload_bytes: most bytes per upload.
    :param concurrency_mode: 1.0: ``Parallel`` or ``Serial``.
    :param assignment_rule_id: 2.0: case or lead assignment rule.
    Other parameters: see ``_SalesforceBulkOperator`` (``api``, ``deferrable``, ``timeout``...).
    """

    template_fields: Sequence[str] = (
        "salesforce_conn_id", "sobject", "operation", "records", "source", "source_format", "external_id_field",
        "results_dir", "results_format",
    )
    external_id_key = "salesforce_bulk_ingest_jobs"

    def __init__(self, *, sobject: str, operation: str = "insert",
                 records: Iterable[Mapping[str, Any]] | None = None,
                 source: str | ObjectStoragePath | None = None, source_format: str | None = None,
                 external_id_field: str | None = None, results_dir: str | ObjectStoragePath | None = None,
                 results_format: str = "csv", max_failed_records: int = 0, max_concurrent_jobs: int | None = None,
                 max_records_per_upload: int | None = None, max_upload_bytes: int | None = None,
                 concurrency_mode: str = "Parallel", assignment_rule_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from airflow_provider_salesforce_suite.operators._records import check_save_arguments

        check_save_arguments(operation, INGEST_OPERATIONS, records=records, source=source,
                             external_id_field=external_id_field, max_failed_records=max_failed_records)
        self.sobject = sobject
        self.operation = operation
        self.records = records
        self.source = source
        self.source_format = source_format
        self.external_id_field = external_id_field
        self.results_dir = results_dir
        self.results_format = results_format
        self.max_failed_records = max_failed_records
        self.max_concurrent_jobs = max_concurrent_jobs
        self.max_records_per_upload = max_records_per_upload
        self.max_upload_bytes = max_upload_bytes
        self.concurrency_mode = concurrency_mode
        self.assignment_rule_id = assignment_rule_id

    def _input(self) -> Iterator[Mapping[str, Any]] | CsvTextRows:
        if self.source is not None:
            from airflow_provider_salesforce_suite.io import CsvTextRows, detect_format, iter_records

            if detect_format(self.source, self.source_format)[0] == "csv":
                # CSV cells go out as CSV cells: pass the rows through without building records
                return CsvTextRows(self.source, format=self.source_format)
            return iter_records(self.source, format=self.source_format)
        if isinstance(self.records, (str, bytes, Mapping)) or not isinstance(self.records, Iterable):
            raise TypeError(
                f"records must be a list of dicts, got {type(self.records).__name__} (for a file use source=; "
                "for Jinja-templated XCom set render_template_as_native_obj=True on the DAG)")
        return iter(self.records)

    def _results_location(self, context: Context) -> str:
        if self.results_dir:
            return str(self.results_dir)
        from airflow.configuration import conf

        base = conf.get("salesforce_suite", "failed_records_base_uri", fallback=None) or (
            f"file://{tempfile.gettempdir()}/salesforce_suite/failed_records")
        return f"{str(base).rstrip('/')}/{_run_part(context)}"

    def _empty_summary(self) -> dict[str, Any]:
        return {"api": self.api, "operation": self.operation, "sobject": self.sobject, "job_ids": [], "records": 0,
                "processed": 0, "failed": 0, "unprocessed": 0, "successful_uri": None, "failed_uri": None,
                "unprocessed_uri": None, "results_dir": None}

    def submit_job(self, context: Context) -> Any:
        """Read the input, upload it and close the job(s); None (no job) for empty input.

        Each upload is noted in ``results_dir/_chunks`` as it goes, under this task instance's key
        (``dag_id/run_id/task_id[-map_index]``), so a try that dies part-way through the uploads is
        resumed by the next one (see :meth:`SalesforceBulkHook.ingest`, ``resume_key``): nothing is
        loaded twice and the final submission covers every job. Not with ``durable=False``, nor
        after a stored submission whose jobs all failed before loading a record (then the mixin
        submits again, from scratch)."""
        records = _non_empty(self._input())
        results_dir = self._results_location(context)
        resume_key = self._resume_key(context)
        if records is None and not self._unfinished(results_dir, resume_key):
            self.log.info("No input records: no Bulk job created for %s %s", self.operation, self.sobject)
            return None
        submitted = self.hook.ingest(
            self.sobject, self.operation, records if records is not None else iter(()),
            api=self.api, external_id_field=self.external_id_field, results_dir=results_dir,
            results_format=self.results_format, max_concurrent_jobs=self.max_concurrent_jobs, wait=False,
            poll_interval=self.poll_interval,
            max_upload_bytes=self.max_upload_bytes, max_records_per_upload=self.max_records_per_upload,
            concurrency_mode=self.concurrency_mode, assignment_rule_id=self.assignment_rule_id, resume_key=resume_key)
        if not submitted.job_ids:
            return None
        self.log.info("Submitted %d %s records to Bulk %s job(s) %s", submitted.records, self.sobject, self.api,
                      submitted.job_ids)
        return {"api": self.api, "job_ids": list(submitted.job_ids), "results_dir": results_dir,
                "records": submitted.records}

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        """Deferrable: as for every Bulk operator. On the worker, the collection does the waiting:
        each job's results are written as soon as it is done (its index is built while it runs),
        while the later jobs keep running."""
        self._persist_job_link(context, external_id)
        if external_id is None or self.deferrable:
            return super().poll_until_complete(external_id, context)
        return self.get_job_result(external_id, context)

    def _submitted(self, external_id: Any, context: Context) -> dict[str, Any]:
        """Submit-only: ``{"api", "operation", "sobject", "job_ids", "records", "results_dir"}``
        (``results_dir`` keeps what :meth:`SalesforceBulkHook.collect_ingest_results` needs to write
        the result files later)."""
        submitted = super()._submitted(external_id, context)
        return {**submitted, "operation": self.operation, "sobject": self.sobject,
                "records": external_id["records"] if external_id else 0,
                "results_dir": external_id["results_dir"] if external_id else None}

    def _resume_key(self, context: Context) -> str | None:
        store = context.get("task_state_store")
        if not self.durable or (store is not None and store.get(self.external_id_key)):
            return None  # not resumable, or the mixin submits again after jobs that loaded nothing
        return _run_part(context)

    @staticmethod
    def _unfinished(results_dir: str, resume_key: str | None) -> bool:
        """An earlier try left submission progress: an input that is empty now must not hide its jobs."""
        from airflow_provider_salesforce_suite.hooks._bulk.journal import HEADER
        from airflow_provider_salesforce_suite.io import to_path

        return resume_key is not None and (to_path(results_dir) / SalesforceBulkHook._CHUNKS / HEADER).exists()

    def _collect(self, external_id: Any, context: Context) -> dict[str, Any]:
        """Write the result files from the finished job(s) and decide success (see the class doc)."""
        if external_id is None:
            return self._empty_summary()
        store = context.get("task_state_store")
        kept = store.get(f"{self.external_id_key}.summary") if store is not None else None
        if isinstance(kept, dict) and kept.get("job_ids") == external_id["job_ids"]:
            # A retry after the files were written (and the upload copies dropped): reuse them.
            summary, failure = kept["summary"], kept["failure"]
        else:
            summary, failure = self._write_results(external_id)
            if store is not None:
                store.set(f"{self.external_id_key}.summary",
                          {"job_ids": external_id["job_ids"], "summary": summary, "failure": failure})
            self._drop_spills(external_id["results_dir"])
        self.log.info("Bulk %s %s of %s: %d records, %d processed, %d failed, %d unprocessed; results in %s",
                      summary["api"], self.operation, self.sobject, summary["records"], summary["processed"],
                      summary["failed"], summary["unprocessed"], summary["results_dir"])
        return self._decide(summary, failure, context)

    def _write_results(self, external_id: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        failure: str | None = None
        try:
            result = self.hook.collect_ingest_results(
                external_id["results_dir"], results_format=self.results_format, poll_interval=self.poll_interval,
                timeout=self.timeout, on_progress=_ProgressLog(self.progress_interval))
        except SalesforceBulkJobFailedError as exc:
            if exc.summary is None:
                raise
            result, failure = exc.summary, str(exc)
        except SalesforceBulkTimeoutError as exc:
            self._timed_out(external_id, str(exc))
        summary = {**self._empty_summary(), "api": external_id["api"], "job_ids": list(result.job_ids),
                   "records": result.records, "processed": result.processed, "failed": result.failed,
                   "unprocessed": result.unprocessed, "successful_uri": result.successful_uri,
                   "failed_uri": result.failed_uri, "unprocessed_uri": result.unprocessed_uri,
                   "results_dir": external_id["results_dir"]}
        if summary["processed"] + summary["failed"] + summary["unprocessed"] != summary["records"] or (
                summary["records"] != external_id["records"]):
            raise SalesforceBulkError(f"Bulk results do not add up to the {external_id['records']} input records: "
                                      f"{summary}")
        return summary, failure

    def _decide(self, summary: dict[str, Any], failure: str | None, context: Context) -> dict[str, Any]:
        if failure is None and summary["failed"] > self.max_failed_records:
            failure = (f"{summary['failed']} of {summary['records']} {self.sobject} records failed to "
                       f"{self.operation} (max_failed_records={self.max_failed_records})")
        if failure is None and summary["unprocessed"]:
            # never a silent success with records left behind (an aborted job, unmatched results)
            failure = f"{summary['unprocessed']} of {summary['records']} {self.sobject} records were not processed"
        if failure is not None:
            ti = context.get("ti")
            if ti is not None:
                ti.xcom_push(key="summary", value=summary)
            where = f"failed records in {summary['failed_uri']}"
            if summary["unprocessed"]:
                where += f", unprocessed records in {summary['unprocessed_uri']}"
            raise SalesforceBulkRecordsFailedError(f"{failure}; {where}", summary)
        return summary

    @staticmethod
    def _drop_spills(results_dir: str) -> None:
        """Remove the copy of the uploads the hook kept for deferred collection (no longer needed)."""
        from airflow_provider_salesforce_suite.io import to_path

        spills = to_path(results_dir) / "_chunks"
        try:
            spills.fs.rm(spills.path, recursive=True)
        except (OSError, FileNotFoundError) as exc:  # leftovers are harmless
            log.debug("Could not remove %s: %s", spills, exc)

    # -- OpenLineage (used when apache-airflow-providers-openlineage is installed) -------------------------
    def get_openlineage_facets_on_start(self) -> Any:
        """The input file (when ``source``); the sObject comes on complete (it needs the instance URL)."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return _lineage.load_facets(self, None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, with the fields loaded (typed by describe) and the records processed."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return _lineage.load_facets(self, "processed")


class SalesforceBulkQueryOperator(_SalesforceBulkOperator):
    """Run a Bulk query (``queryAll`` with ``include_deleted``) and stream its results to a CSV,
    JSON Lines or Parquet file on any ``ObjectStoragePath`` location, in constant memory.

    With ``incremental=True`` only records changed since the previous run are extracted: the
    query gets ``<watermark_field> >= <watermark - lookback>`` (the watermark is kept between runs
    in the asset state store of ``watermark_asset``, by default the task's first outlet asset;
    see :mod:`~airflow_provider_salesforce_suite.operators._bulk.watermark` for why and for the
    window rule). The first run extracts everything (or from ``initial_watermark``).

    Returns (XCom) ``{"api", "job_id", "soql", "records", "output_uri", "format", "watermark"}``;
    with ``wait_for_completion=False``, ``{"api", "job_ids", "job_id", "soql"}`` (nothing written).

    :param soql: the query (templated).
    :param output_uri: destination URI/path/``ObjectStoragePath`` (templated).
    :param output_format: ``csv``, ``jsonl``, ``parquet`` (``csv.gz``, ``jsonl.gz``); default from the suffix.
    :param include_deleted: ``queryAll``: include deleted and archived records.
    :param pk_chunking: 1.0 only: True or ``{"chunkSize": 100000, ...}``.
    :param sobject: 1.0: the job's sObject (default: the query's FROM object).
    :param max_records: 2.0: ``maxRecords`` per results page.
    :param max_parallel_pages: 2.0: download up to this many result pages at once ("Get Parallel
        Results for a Query Job", API 58.0+; older versions read one page after another). Pages are
        spilled to temporary files and written in order, so the output is the same as with the
        default 1; it helps when the network, not Salesforce or this worker, is the limit.
    :param field_types: JSON Lines/Parquet: column -> Salesforce type for typed values.
    :param incremental: extract only what changed since the last successful run.
    :param watermark_field: the timestamp field (default ``SystemModstamp``); added to the SELECT list when missing.
    :param lookback: overlap before the watermark (seconds or ``timedelta``, templated; default 5 minutes).
    :param initial_watermark: ISO datetime lower bound of the first run (default: everything).
    :param watermark_asset: the ``Asset`` (an inlet or outlet of the task) whose state keeps the watermark.
    :param watermark_key: the key in that asset's state.
    Other parameters: see ``_SalesforceBulkOperator``.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "soql", "output_uri", "output_format", "sobject",
                                      "initial_watermark", "lookback")
    template_ext: Sequence[str] = (".soql",)
    external_id_key = "salesforce_bulk_query_job"
    _kind = "query"

    def __init__(self, *, soql: str, output_uri: str | ObjectStoragePath, output_format: str | None = None,
                 include_deleted: bool = False, pk_chunking: Mapping[str, Any] | bool | None = None,
                 sobject: str | None = None, max_records: int | None = None, max_parallel_pages: int = 1,
                 field_types: Mapping[str, str] | None = None, incremental: bool = False,
                 watermark_field: str | None = None, lookback: float | dt.timedelta = dt.timedelta(minutes=5),
                 initial_watermark: str | None = None, watermark_asset: Any = None,
                 watermark_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if pk_chunking and self.api != "1.0":
            raise ValueError("pk_chunking is a Bulk API 1.0 option: use api='1.0'")
        if watermark_field and not incremental:
            raise ValueError("watermark_field needs incremental=True")
        if incremental and not self.wait_for_completion:
            raise ValueError("incremental=True moves the watermark from the extracted rows: it needs "
                             "wait_for_completion=True")
        self.soql = soql
        self.output_uri = output_uri
        self.output_format = output_format
        self.include_deleted = include_deleted
        self.pk_chunking = pk_chunking
        self.sobject = sobject
        self.max_records = max_records
        from airflow_provider_salesforce_suite.hooks._bulk.pages import check_parallel_pages

        self.max_parallel_pages = check_parallel_pages(max_parallel_pages, self.api)
        self.field_types = dict(field_types) if field_types else None
        self.incremental = incremental
        self.watermark_field = (watermark_field or "SystemModstamp") if incremental else None
        self.lookback = lookback
        self.initial_watermark = initial_watermark
        self.watermark_asset = watermark_asset
        from airflow_provider_salesforce_suite.operators._bulk.watermark import DEFAULT_STATE_KEY

        self.watermark_key = watermark_key or DEFAULT_STATE_KEY

    # -- watermark ------------------------------------------------------------------------------------------
    def _watermark_store(self, context: Context) -> Any:
        stores = context.get("asset_state_store")
        asset = self.watermark_asset
        if asset is None:
            from airflow.sdk import Asset

            asset = next((outlet for outlet in self.outlets or [] if isinstance(outlet, Asset)), None)
        if asset is None:
            raise ValueError("incremental=True keeps its watermark in an asset's state: give the task an outlet "
                             "Asset (outlets=[Asset(...)]) or watermark_asset=")
        if stores is None:
            raise SalesforceBulkError("asset_state_store is not in the task context: incremental extracts need "
                                      "Airflow 3.3's state store")
        return stores[asset]

    def _query(self, context: Context) -> tuple[str, dict[str, Any] | None]:
        if not self.incremental:
            return self.soql, None
        from airflow_provider_salesforce_suite.operators._bulk import watermark as wm

        stored = self._watermark_store(context).get(self.watermark_key)
        previous = stored.get("value") if isinstance(stored, Mapping) else None
        if isinstance(stored, Mapping) and stored.get("field") not in (None, self.watermark_field):
            raise ValueError(f"the stored watermark is on {stored.get('field')}, not {self.watermark_field}: use "
                             "another watermark_key")
        field = self.watermark_field
        assert field is not None
        soql = wm.ensure_selected(self.soql, field)
        lookback = self.lookback if isinstance(self.lookback, dt.timedelta) else dt.timedelta(
            seconds=float(self.lookback))
        if lookback < dt.timedelta(0):
            raise ValueError("lookback must not be negative")
        start = wm.parse_timestamp(previous) - lookback if previous else wm.parse_timestamp(self.initial_watermark)
        if start is not None:
            soql = wm.add_condition(soql, f"{field} >= {wm.soql_literal(start)}")
        self.log.info("Incremental extract on %s: previous watermark %s, lower bound %s", field, previous,
                      wm.iso(start) if start else "none (full extract)")
        return soql, {"field": field, "previous": previous, "lower_bound": wm.iso(start) if start else None}

    def _save_watermark(self, context: Context, window: dict[str, Any], job_id: str, fmt: str) -> dict[str, Any]:
        from airflow_provider_salesforce_suite.io import iter_records
        from airflow_provider_salesforce_suite.operators._bulk import watermark as wm

        field = window["field"].lower()
        seen = wm.parse_timestamp(window["previous"])
        key = None
        for record in iter_records(self.output_uri, format=self.output_format or None):
            if key is None:
                key = next((k for k in record if k.lower() == field), None)
                if key is None:
                    raise SalesforceBulkError(f"the extract has no {window['field']} column for the watermark")
            value = wm.parse_timestamp(record.get(key))
            if value is not None and (seen is None or value > seen):
                seen = value
        new = wm.iso(seen) if seen else None
        if new and new != window["previous"]:
            ti = context.get("ti")
            self._watermark_store(context).set(self.watermark_key, {
                "field": window["field"], "value": new, "job_id": job_id, "run_id": getattr(ti, "run_id", None)})
        self.log.info("Watermark %s: %s -> %s", window["field"], window["previous"], new)
        return {**window, "new": new}

    # -- lifecycle ------------------------------------------------------------------------------------------
    def submit_job(self, context: Context) -> Any:
        """Create the query job (1.0: job + SOQL batch)."""
        soql, window = self._query(context)
        sobject = self.sobject
        if self.api == "1.0" and sobject is None:
            from airflow_provider_salesforce_suite.operators._bulk.watermark import _top_level

            start = next((e for _, e, k in _top_level(soql) if k == "FROM"), None)
            if start is None:
                raise ValueError("cannot tell the sObject of the query: pass sobject=")
            sobject = soql[start:].split()[0]
        job_id = self.hook.submit_query_job(soql, api=self.api, sobject=sobject, include_deleted=self.include_deleted,
                                            pk_chunking=self.pk_chunking)
        self.log.info("Bulk %s query job %s: %s", self.api, job_id, soql)
        return {"api": self.api, "job_ids": [job_id], "soql": soql, "window": window}

    def get_job_status(self, external_id: Any, context: Context) -> str:
        status = super().get_job_status(external_id, context)
        # A query reads, never writes: a failed query job is always safe to run again.
        return "FailedNothingLoaded" if status == "Done" and any(s.failed for _, s in self._infos(external_id)) \
            else status

    def _submitted(self, external_id: Any, context: Context) -> dict[str, Any]:
        """Submit-only: ``{"api", "job_ids", "job_id", "soql"}``; ``output_uri`` is not written."""
        submitted = super()._submitted(external_id, context)
        return {**submitted, "job_id": submitted["job_ids"][0], "soql": external_id["soql"]}

    def _collect(self, external_id: Any, context: Context) -> dict[str, Any]:
        """Stream the results into ``output_uri``; then move the watermark (incremental)."""
        job_id, api = external_id["job_ids"][0], external_id["api"]
        written = self.hook.write_query_results(job_id, self.output_uri, api=api, format=self.output_format,
                                                max_records=self.max_records, field_types=self.field_types,
                                                max_parallel_pages=self.max_parallel_pages)
        fmt, records = written.format, written.records
        summary: dict[str, Any] = {"api": api, "job_id": job_id, "soql": external_id["soql"], "records": records,
                                   "output_uri": str(self.output_uri), "format": fmt, "watermark": None}
        if external_id.get("window"):
            summary["watermark"] = self._save_watermark(context, external_id["window"], job_id, fmt)
        self.log.info("Bulk %s query job %s: %d records written to %s", api, job_id, records, self.output_uri)
        return summary

    # -- OpenLineage (used when apache-airflow-providers-openlineage is installed) -------------------------
    def get_openlineage_facets_on_start(self) -> Any:
        """The output file; the queried sObject comes on complete (it needs the instance URL)."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return _lineage.query_to_file(self, self.soql, self.output_uri, complete=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, with the selected fields typed by describe and the records extracted."""
        from airflow_provider_salesforce_suite.operators import _lineage

        result = _lineage.task_result(self, task_instance)
        soql = result.get("soql") if isinstance(result, Mapping) else None
        return _lineage.query_to_file(self, soql or self.soql, self.output_uri, result, complete=True)
