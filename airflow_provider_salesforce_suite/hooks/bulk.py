"""Bulk API 2.0 and 1.0 hook: every job endpoint, waiting, and constant-memory ingest and extract.

Every call goes through the shared :class:`~airflow_provider_salesforce_suite.core.transport.SalesforceSession`
(auth, re-auth on ``401`` and on Bulk 1.0's ``400 InvalidSessionId``, retries, timeouts); the
``a_`` methods are their aiohttp twins for triggers. Requests are described once in
:mod:`._bulk.wire` and responses parsed there, so both share them.

Data path: :meth:`SalesforceBulkHook.ingest` splits an iterable of records lazily into CSV uploads
(:mod:`._bulk.chunking`), keeps at most ``max_concurrent_jobs`` uploads in flight, and writes result
files tied to input rows (:mod:`._bulk.results`); :meth:`SalesforceBulkHook.extract` streams query
results into a CSV, JSON Lines or Parquet file. A submission that does not wait notes each upload
as it goes (:mod:`._bulk.journal`), so a retry after a crash resumes it instead of loading twice.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator, Literal, Mapping, NoReturn

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceNotFoundError,
    SalesforceOutcomeUnknownError,
    SalesforceSuiteError,
)
from airflow_provider_salesforce_suite.hooks._bulk import wire
from airflow_provider_salesforce_suite.hooks._bulk.pages import (
    PageDownloadStopped,
    check_parallel_pages,
    download_in_order,
    result_page_urls,
    supports_parallel_results,
)
from airflow_provider_salesforce_suite.hooks._bulk.chunking import (
    V1_MAX_BATCH_BYTES,
    V1_MAX_BATCH_RECORDS,
    V2_DEFAULT_MAX_RECORDS,
    V2_MAX_UPLOAD_BYTES,
    Chunk,
    CsvChunker,
    check_v2_upload_size,
)
from airflow_provider_salesforce_suite.hooks._bulk.journal import (
    MANIFEST,
    Progress,
    SubmissionJournal,
    digest,
    entry_of,
)
from airflow_provider_salesforce_suite.hooks._bulk.results import (
    BulkExtractSummary,
    BulkIngestSummary,
    IngestFailure,
    IngestResultFiles,
    concat_csv,
    correlate_v1,
    correlate_v2,
    index_chunk,
    csv_rows,
    typed_values,
    unprocessed,
)
from airflow_provider_salesforce_suite.hooks._bulk.rereads import reread_body
from airflow_provider_salesforce_suite.hooks._bulk.values import ValueCheck
from airflow_provider_salesforce_suite.hooks._bulk.states import (
    BulkApi,
    BulkJobProgress,
    BulkJobState,
    JobKind,
    JobStatus,
    SalesforceBulkError,
    SalesforceBulkInputError,
    SalesforceBulkJobFailedError,
    SalesforceBulkJobPurgedError,
    SalesforceBulkTimeoutError,
    StoppedJob,
    evaluate_job,
    job_gone,
)
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

if TYPE_CHECKING:
    import requests

    from airflow_provider_salesforce_suite.core.transport import AsyncResponse
    from airflow_provider_salesforce_suite.io.formats import Source
    from airflow_provider_salesforce_suite.io.readers import CsvTextRows

__all__ = [
    "BulkExtractSummary",
    "BulkIngestSummary",
    "BulkJobProgress",
    "BulkJobState",
    "SalesforceBulkError",
    "SalesforceBulkHook",
    "SalesforceBulkInputError",
    "SalesforceBulkJobFailedError",
    "SalesforceBulkJobPurgedError",
    "SalesforceBulkTimeoutError",
    "evaluate_job",
]

log = logging.getLogger(__name__)

STREAM_CHUNK_BYTES = 1 << 18
#: Seconds before the second poll of a job; later waits double up to ``poll_interval``.
FIRST_POLL_DELAY = 0.5
#: Copy size between a spill and its kept copy (remote results directories).
SPILL_COPY_BYTES = 1 << 20
_EXTRACT_PAGE_ROWS = 5000
#: Jobs a 2.0 chunk may go through when creation or upload replies are lost (each lost one loads nothing).
_LOST_REPLY_ATTEMPTS = 3
_FROM = re.compile(r"\bfrom\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
ProgressCallback = Callable[[BulkJobProgress], None]


#: Uploads in flight at once when ``ingest`` waits for its jobs and no ``max_concurrent_jobs`` is given.
DEFAULT_CONCURRENT_UPLOADS = 2


@dataclass
class _Upload:
    """One chunk in flight: its 2.0 job, or its 1.0 job and batch."""

    chunk: Chunk
    job_id: str
    batch_id: str | None = None


def _rows_of(entry: Mapping[str, Any]) -> str:
    """``input rows 11-20`` of a journal entry (its uploaded and refused rows)."""
    last = entry["first_row"] + entry["records"] + len(entry.get("rejected", ())) - 1
    return f"input rows {entry['first_row']}-{last}"


def _maybe_loaded(rows: str, journal: SubmissionJournal) -> str:
    return (f"It held {rows}, which an earlier try sent: they may have been loaded, and nothing can tell any more. "
            f"Not sending them again (that could load them twice): check the org for them, then remove "
            f"{journal.location} to submit afresh, or drop the loaded rows from the input.")


class SalesforceBulkHook(SalesforceBaseHook):
    """Salesforce Bulk API 2.0 and 1.0. Constructing it does no I/O.

    :param salesforce_conn_id: Airflow connection id of type ``salesforce_suite``.
    :param api_version: overrides the connection's ``api_version`` extra.
    """

    hook_name = "Salesforce Bulk"

    # -- request descriptions (shared by sync and async) -----------------------------------------------
    def _v2(self, endpoint: wire.Endpoint, **values: str) -> tuple[str, str]:
        return endpoint.method, self.data_url(endpoint.path(**values))

    def _v1(self, endpoint: wire.Endpoint, **values: str) -> tuple[str, str]:
        return endpoint.method, f"/services/async/{self.api_version}/{endpoint.path(**values)}"

    @staticmethod
    def _kind(kind: str) -> str:
        return wire.check_choice(kind, wire.JOB_KINDS, "kind")

    def _stream(self, method: str, path: str, *, job_id: str, params: Mapping[str, Any] | None = None,
                first: requests.Response | None = None) -> Iterator[bytes]:
        """The body of a successful GET in chunks (gzip is negotiated and decoded by requests); a
        connection cut mid-body is read again from the start (see :mod:`._bulk.rereads`).

        :param job_id: the job the document belongs to (named by an error).
        :param first: the response of the first GET, when its headers were needed first.
        """
        yield from reread_body(lambda: self.request(method, path, params=params, stream=True), STREAM_CHUNK_BYTES,
                               retries=self.session.policy.max_retries, what=f"Bulk job {job_id}: {method} {path}",
                               first=first)

    @staticmethod
    def _v1_parsed(response: requests.Response | AsyncResponse) -> Any:
        body = response.content if hasattr(response, "content") else response.body
        return wire.parse_v1_body(body, response.headers.get("Content-Type", ""))

    async def _a_request(self, method: str, path: str) -> AsyncResponse:
        return (await self.async_session().request(method, path)).raise_for_status()

    # -- Bulk 2.0 ingest -------------------------------------------------------------------------------
    def create_ingest_job(self, sobject: str, operation: str, *, external_id_field: str | None = None,
                          column_delimiter: str = "COMMA", line_ending: str = "LF",
                          assignment_rule_id: str | None = None) -> dict[str, Any]:
        """Create a Bulk 2.0 ingest job (state ``Open``) and return its job info.

        :param sobject: the sObject (``Account``).
        :param operation: ``insert``, ``update``, ``upsert``, ``delete`` or ``hardDelete``.
        :param external_id_field: the external id field (upsert).
        :param column_delimiter: ``COMMA``, ``TAB``, ``PIPE``, ``SEMICOLON``, ``CARET`` or ``BACKQUOTE``.
        :param line_ending: ``LF`` or ``CRLF``.
        :param assignment_rule_id: case or lead assignment rule.
        """
        body = wire.v2_ingest_job_body(sobject, operation, external_id_field=external_id_field,
                                       column_delimiter=column_delimiter, line_ending=line_ending,
                                       assignment_rule_id=assignment_rule_id)
        return self.request(*self._v2(wire.V2_CREATE, kind="ingest"), json=body).json()

    def upload_job_data(self, job_id: str, data: bytes) -> None:
        """Upload the CSV data of an ``Open`` job (one upload per job; at most 100 MB, see ``ingest``).

        Never replayed after a reply is lost (:class:`SalesforceOutcomeUnknownError`): Salesforce
        fails a job given two uploads ("Found multiple contents for job"), so the caller must abort
        the job and start a new one (as :meth:`ingest` does).

        :param job_id: the job.
        :param data: CSV bytes with a header row.
        """
        self.request(*self._v2(wire.V2_UPLOAD, job_id=job_id), data=data,
                     headers={"Content-Type": wire.CSV_CONTENT_TYPE}, idempotent=False)

    def _set_state(self, job_id: str, kind: str, state: str) -> dict[str, Any]:
        return self.request(*self._v2(wire.V2_SET_STATE, kind=self._kind(kind), job_id=job_id),
                            json={"state": state}).json()

    def close_job(self, job_id: str) -> dict[str, Any]:
        """Mark an ingest job's upload complete (state ``UploadComplete``): Salesforce starts processing."""
        return self._set_state(job_id, "ingest", BulkJobState.UPLOAD_COMPLETE.value)

    def abort_job(self, job_id: str, *, kind: JobKind = "ingest") -> dict[str, Any]:
        """Abort a job.

        :param job_id: the job.
        :param kind: ``ingest`` or ``query``.
        """
        return self._set_state(job_id, kind, BulkJobState.ABORTED.value)

    def delete_job(self, job_id: str, *, kind: JobKind = "ingest") -> None:
        """Delete a job (and its data and results)."""
        self.request(*self._v2(wire.V2_DELETE, kind=self._kind(kind), job_id=job_id))

    def get_job(self, job_id: str, *, kind: JobKind = "ingest") -> dict[str, Any]:
        """A Bulk 2.0 job's info (``state``, ``numberRecordsProcessed``, ``errorMessage``...)."""
        return self.request(*self._v2(wire.V2_GET, kind=self._kind(kind), job_id=job_id)).json()

    async def a_get_job(self, job_id: str, *, kind: JobKind = "ingest") -> dict[str, Any]:
        """Async twin of :meth:`get_job`."""
        return (await self._a_request(*self._v2(wire.V2_GET, kind=self._kind(kind), job_id=job_id))).json()

    def list_jobs(self, *, kind: JobKind = "ingest", **filters: Any) -> Iterator[dict[str, Any]]:
        """Every job of the org, following ``nextRecordsUrl``.

        :param kind: ``ingest`` or ``query``.
        :param filters: query parameters (``isPkChunkingEnabled``, ``jobType``, ``concurrencyMode``).
        """
        method, path = self._v2(wire.V2_LIST, kind=self._kind(kind))
        params: Mapping[str, Any] | None = {k: str(v).lower() if isinstance(v, bool) else v
                                            for k, v in filters.items()}
        while path:
            page = self.request(method, path, params=params).json()
            yield from page.get("records", [])
            path, params = (None if page.get("done", True) else page.get("nextRecordsUrl")), None

    def stream_ingest_results(self, job_id: str,
                              which: Literal["successful", "failed", "unprocessed"]) -> Iterator[bytes]:
        """A job's results as a CSV byte stream (header first; rows in no particular order).

        :param job_id: the job.
        :param which: ``successful`` (``sf__Id``, ``sf__Created``, fields), ``failed`` (``sf__Id``,
            ``sf__Error``, fields) or ``unprocessed`` (fields).
        """
        resource = wire.V2_RESULT_RESOURCES[wire.check_choice(which, tuple(wire.V2_RESULT_RESOURCES), "which")]
        return self._stream(*self._v2(wire.V2_INGEST_RESULTS, job_id=job_id, resource=resource), job_id=job_id)

    # -- Bulk 2.0 query --------------------------------------------------------------------------------
    def create_query_job(self, soql: str, *, include_deleted: bool = False, column_delimiter: str = "COMMA",
                         line_ending: str = "LF") -> dict[str, Any]:
        """Create a Bulk 2.0 query job (``queryAll`` when ``include_deleted``)."""
        body = wire.v2_query_job_body(soql, include_deleted=include_deleted, column_delimiter=column_delimiter,
                                      line_ending=line_ending)
        return self.request(*self._v2(wire.V2_CREATE, kind="query"), json=body).json()

    def stream_query_results(self, job_id: str, *, max_records: int | None = None,
                             max_parallel_pages: int = 1) -> Iterator[bytes]:
        """A completed query job's results as ONE CSV byte stream: the pages in order, following
        ``Sforce-Locator`` until ``null``; the header row appears only once, at the start (later
        pages' headers are dropped), so the stream can be written to a file as is.

        :param job_id: the query job (state ``JobComplete``).
        :param max_records: ``maxRecords`` per page (Salesforce's default when None).
        :param max_parallel_pages: download up to this many pages at once through "Get Parallel
            Results for a Query Job" (``resultPages``, API 58.0+), each spilled to a temporary file
            and streamed in page order (see :mod:`._bulk.pages`); the bytes are the same as with 1
            (the default: one page after another, as below API 58.0). ``max_records`` is then sent
            with the ``resultPages`` request, and its page URLs are used as given.
        """
        parallel = check_parallel_pages(max_parallel_pages)
        if parallel > 1 and supports_parallel_results(self.api_version):
            return concat_csv(self._parallel_query_pages(job_id, max_records, parallel))
        if parallel > 1:
            log.info("API %s has no resultPages (58.0+): reading the results of job %s one page at a time",
                     self.api_version, job_id)
        return concat_csv(self._query_pages(job_id, max_records))

    def _query_pages(self, job_id: str, max_records: int | None) -> Iterator[Iterator[bytes]]:
        method, path = self._v2(wire.V2_QUERY_RESULTS, job_id=job_id)
        locator: str | None = None
        while True:
            params = {k: v for k, v in (("locator", locator), ("maxRecords", max_records)) if v}
            response = self.request(method, path, params=params or None, stream=True)
            locator = response.headers.get(wire.LOCATOR_HEADER)
            body = self._stream(method, path, job_id=job_id, params=params or None, first=response)
            yield body
            body.close()
            response.close()
            if not locator or locator == "null":
                return

    def _parallel_query_pages(self, job_id: str, max_records: int | None, parallel: int) -> Iterator[Iterator[bytes]]:
        """The pages listed by ``resultPages``, ``parallel`` at a time on threads sharing
        :attr:`session` (its connection pool, token cache and re-auth are thread-safe)."""
        method, path = self._v2(wire.V2_QUERY_RESULT_PAGES, job_id=job_id)
        urls = result_page_urls(lambda url, params: self.request(method, url, params=params).json(), path,
                                {"maxRecords": max_records} if max_records else None)

        def fetch(url: str, spill: BinaryIO, stop: threading.Event) -> None:
            body = self._stream("GET", url, job_id=job_id)
            try:
                for chunk in body:
                    if stop.is_set():
                        raise PageDownloadStopped(url)
                    spill.write(chunk)
            finally:
                body.close()

        listed = False
        for page in download_in_order(urls, fetch, parallel, label=f"Bulk query job {job_id}"):
            listed = True
            yield page
        if not listed:  # no page URL at all: read /results once for the header
            yield from self._query_pages(job_id, max_records)

    # -- Bulk 1.0 --------------------------------------------------------------------------------------
    def v1_create_job(self, sobject: str, operation: str, *, content_type: str = "CSV",
                      concurrency_mode: str = "Parallel", external_id_field: str | None = None,
                      pk_chunking: Mapping[str, Any] | bool | None = None) -> dict[str, Any]:
        """Create a Bulk 1.0 job and return its ``jobInfo``.

        :param sobject: the sObject.
        :param operation: ``insert``, ``update``, ``upsert``, ``delete``, ``hardDelete``, ``query``, ``queryAll``.
        :param content_type: batch data format: ``CSV``, ``JSON`` or ``XML``.
        :param concurrency_mode: ``Parallel`` or ``Serial``.
        :param external_id_field: the external id field (upsert).
        :param pk_chunking: query jobs: True, or ``{"chunkSize": 100000, "parent": ..., "startRow": ...}``.
        """
        body = wire.v1_create_job_body(sobject, operation, content_type=content_type,
                                       concurrency_mode=concurrency_mode, external_id_field=external_id_field)
        headers = {"Content-Type": wire.XML_CONTENT_TYPE, **wire.pk_chunking_header(pk_chunking)}
        return self._v1_parsed(self.request(*self._v1(wire.V1_CREATE), data=body, headers=headers))

    def v1_add_batch(self, job_id: str, data: bytes, *, content_type: str = "CSV") -> dict[str, Any]:
        """Add a batch (records, or the SOQL text of a query job); returns its ``batchInfo``.

        :param job_id: the job.
        :param data: the batch body (at most 10,000 records and 10 MB).
        :param content_type: ``CSV``, ``JSON`` or ``XML`` (the job's content type).
        """
        content = wire.V1_CONTENT_TYPES[wire.check_choice(content_type, tuple(wire.V1_CONTENT_TYPES), "content_type")]
        return self._v1_parsed(self.request(*self._v1(wire.V1_ADD_BATCH, job_id=job_id), data=data,
                                            headers={"Content-Type": content}))

    def _v1_set_state(self, job_id: str, state: str) -> dict[str, Any]:
        return self._v1_parsed(self.request(*self._v1(wire.V1_SET_STATE, job_id=job_id),
                                            data=wire.job_info_xml(state=state),
                                            headers={"Content-Type": wire.XML_CONTENT_TYPE}))

    def v1_close_job(self, job_id: str) -> dict[str, Any]:
        """Close a Bulk 1.0 job (no more batches)."""
        return self._v1_set_state(job_id, BulkJobState.CLOSED.value)

    def v1_abort_job(self, job_id: str) -> dict[str, Any]:
        """Abort a Bulk 1.0 job (unprocessed batches are not processed)."""
        return self._v1_set_state(job_id, BulkJobState.ABORTED.value)

    def v1_get_job(self, job_id: str) -> dict[str, Any]:
        """A Bulk 1.0 ``jobInfo`` (numbers as ints)."""
        return self._v1_parsed(self.request(*self._v1(wire.V1_GET, job_id=job_id)))

    async def a_v1_get_job(self, job_id: str) -> dict[str, Any]:
        """Async twin of :meth:`v1_get_job`."""
        return self._v1_parsed(await self._a_request(*self._v1(wire.V1_GET, job_id=job_id)))

    def v1_list_batches(self, job_id: str) -> list[dict[str, Any]]:
        """The ``batchInfo`` of every batch of a job, in Salesforce's order."""
        return wire.batch_list(self._v1_parsed(self.request(*self._v1(wire.V1_LIST_BATCHES, job_id=job_id))))

    async def a_v1_list_batches(self, job_id: str) -> list[dict[str, Any]]:
        """Async twin of :meth:`v1_list_batches`."""
        return wire.batch_list(self._v1_parsed(await self._a_request(*self._v1(wire.V1_LIST_BATCHES, job_id=job_id))))

    def v1_get_batch(self, job_id: str, batch_id: str) -> dict[str, Any]:
        """A batch's ``batchInfo`` (``state``, ``stateMessage``, counts)."""
        return self._v1_parsed(self.request(*self._v1(wire.V1_GET_BATCH, job_id=job_id, batch_id=batch_id)))

    async def a_v1_get_batch(self, job_id: str, batch_id: str) -> dict[str, Any]:
        """Async twin of :meth:`v1_get_batch`."""
        return self._v1_parsed(await self._a_request(*self._v1(wire.V1_GET_BATCH, job_id=job_id, batch_id=batch_id)))

    def v1_batch_request(self, job_id: str, batch_id: str) -> Iterator[bytes]:
        """The batch's request body as Salesforce stored it, streamed."""
        return self._stream(*self._v1(wire.V1_BATCH_REQUEST, job_id=job_id, batch_id=batch_id), job_id=job_id)

    def v1_batch_results(self, job_id: str, batch_id: str) -> Iterator[bytes]:
        """An ingest batch's results, streamed: CSV ``Id, Success, Created, Error``, one row per
        request row in request order."""
        return self._stream(*self._v1(wire.V1_BATCH_RESULT, job_id=job_id, batch_id=batch_id), job_id=job_id)

    def v1_query_result_ids(self, job_id: str, batch_id: str) -> list[str]:
        """The result ids of a completed query batch."""
        parsed = self._v1_parsed(self.request(*self._v1(wire.V1_BATCH_RESULT, job_id=job_id, batch_id=batch_id)))
        return [str(item) for item in (parsed if isinstance(parsed, list) else parsed.get("result", []))]

    def v1_query_result(self, job_id: str, batch_id: str, result_id: str) -> Iterator[bytes]:
        """One query result file, streamed (CSV with a header)."""
        return self._stream(*self._v1(wire.V1_QUERY_RESULT, job_id=job_id, batch_id=batch_id, result_id=result_id),
                            job_id=job_id)

    # -- waiting -----------------------------------------------------------------------------------------
    def _poll(self, job_id: str, fetch: Callable[[], dict[str, Any]], evaluate: Callable[[dict[str, Any]], JobStatus],
              poll_interval: float, timeout: float | None,
              on_progress: ProgressCallback | None) -> tuple[dict[str, Any], JobStatus]:
        started = time.monotonic()
        delay = min(poll_interval, FIRST_POLL_DELAY)
        while True:
            info = fetch()
            status = evaluate(info)
            elapsed = time.monotonic() - started
            if on_progress is not None:
                rate = status.records_processed / elapsed if elapsed > 0 else 0.0
                on_progress(BulkJobProgress(job_id, status.state, status.records_processed,
                                            status.records_failed, elapsed, rate))
            if status.done:
                return info, status
            if timeout is not None and elapsed + delay > timeout:
                raise SalesforceBulkTimeoutError(job_id, status.state, elapsed)
            time.sleep(delay)
            delay = min(delay * 2, poll_interval)

    def wait_for_job(self, job_id: str, *, api: BulkApi = "2.0", kind: JobKind = "ingest",
                     poll_interval: float = 5.0, timeout: float | None = None,
                     on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        """Poll a job until it is done (see :func:`evaluate_job`) and return its final info.

        :param job_id: the job.
        :param api: ``"2.0"`` or ``"1.0"`` (1.0: done when no batch is queued or in progress).
        :param kind: 2.0 only: ``ingest`` or ``query``.
        :param poll_interval: most seconds between polls (the first waits are shorter, from
            ``FIRST_POLL_DELAY`` doubling up to it, so a short job is seen done soon).
        :param timeout: give up after this many seconds (the job keeps running: aborting is the caller's call).
        :param on_progress: called with a :class:`BulkJobProgress` after every poll.
        :raises SalesforceBulkJobFailedError: the job ended ``Failed`` or ``Aborted`` (with Salesforce's message).
        :raises SalesforceBulkTimeoutError: ``timeout`` passed.
        """
        if api == "2.0":
            info, status = self._poll(job_id, lambda: self.get_job(job_id, kind=kind), evaluate_job,
                                      poll_interval, timeout, on_progress)
        else:
            info, status = self._poll(job_id, lambda: self.v1_get_job(job_id),
                                      lambda i: evaluate_job(i, "1.0"), poll_interval, timeout, on_progress)
        if status.failed:
            raise SalesforceBulkJobFailedError(job_id, status.state, status.message)
        return info

    def _wait_for_batch(self, job_id: str, batch_id: str, poll_interval: float, timeout: float | None,
                        on_progress: ProgressCallback | None) -> dict[str, Any]:
        def evaluate(info: dict[str, Any]) -> JobStatus:
            state = BulkJobState(info.get("state"))
            return JobStatus(state, state.is_terminal, state is BulkJobState.FAILED,
                             int(info.get("numberRecordsProcessed") or 0), int(info.get("numberRecordsFailed") or 0),
                             info.get("stateMessage") or None)

        return self._poll(job_id, lambda: self.v1_get_batch(job_id, batch_id), evaluate, poll_interval, timeout,
                          on_progress)[0]

    # -- ingest -------------------------------------------------------------------------------------------
    def ingest(self, sobject: str, operation: str, records: Iterable[Mapping[str, Any]] | CsvTextRows, *, api: BulkApi = "2.0",
               external_id_field: str | None = None, results_dir: Source, results_format: str = "csv",
               max_concurrent_jobs: int | None = None, wait: bool = True, poll_interval: float = 5.0,
               timeout: float | None = None, abort_on_timeout: bool = False,
               max_upload_bytes: int | None = None, max_records_per_upload: int | None = None,
               concurrency_mode: str = "Parallel", assignment_rule_id: str | None = None,
               column_delimiter: str = "COMMA", line_ending: str = "LF", raise_on_failure: bool = True,
               on_progress: ProgressCallback | None = None, resume_key: str | None = None) -> BulkIngestSummary:
        """Load ``records`` in constant memory and write result files tied to the input rows.

        Records are encoded to CSV one at a time and split into uploads by exact encoded size and
        count (2.0: one job per upload, <= 100 MB raw, i.e. <= 150 MB base64; 1.0: one job, batches
        of <= 10,000 records and <= 10 MB). At most ``max_concurrent_jobs`` uploads (2.0 jobs or
        1.0 batches) are in flight: when the window is full the oldest is waited for and its results
        written, so uploads appear in the result files in input order. See :mod:`._bulk.results` for the files and
        how rows are correlated. After a job (or batch) fails, the remaining input is not sent: it
        is read and written to the unprocessed file, and :class:`SalesforceBulkJobFailedError` (with
        ``.summary``) is raised once the files are complete (unless ``raise_on_failure`` is False).

        A row with a value Salesforce would refuse (over the API's per-field limit, NUL; on 1.0 also
        XML-illegal characters, see :mod:`._bulk.values`) is not uploaded: it is a failed record
        whose ``sf__Error`` names the field and the limit or character.

        If the input turns bad part-way (a malformed line, a record that is not a mapping or does not
        fit an upload) after some of it was submitted, nothing more is sent, the jobs that have not
        finished are aborted (a finished job cannot be undone) and :class:`SalesforceBulkInputError`
        names the line and lists every submitted job with its records and state. With ``wait=False``
        each step of the submission is noted in ``results_dir/_chunks`` before the next one (see
        :mod:`._bulk.journal`), so a call with the same ``resume_key`` after a crash resumes it
        instead of loading records twice.

        :param sobject: the sObject.
        :param operation: ``insert``, ``update``, ``upsert``, ``delete`` or ``hardDelete``.
        :param records: the records (e.g. ``io.iter_records(...)``); nested parent references become
            ``Parent.Field`` columns, None is sent as ``#N/A`` (null), a missing key as an empty cell.
            Or the rows of a CSV file (``io.CsvTextRows(...)``): its cells are sent as they are.
        :param api: ``"2.0"`` or ``"1.0"``.
        :param external_id_field: the external id field (upsert).
        :param results_dir: local path, URI or ``ObjectStoragePath`` of the results directory.
        :param results_format: ``csv``, ``jsonl``, ``parquet`` (``csv.gz``, ``jsonl.gz``).
        :param max_concurrent_jobs: uploads in flight at once (default 2 with ``wait``). With
            ``wait=False`` (2.0): at most this many jobs not yet finished; a further upload waits for
            one to finish (polling every ``poll_interval``). Default None there: every upload goes
            in at once and Salesforce queues the jobs. Bulk 1.0 batches are governed by the job's
            ``concurrency_mode``.
        :param wait: False: upload, close and return at once (counts are zero; the spills and a
            manifest are kept in ``results_dir/_chunks`` for :meth:`collect_ingest_results`).
        :param poll_interval: seconds between polls.
        :param timeout: seconds to wait for each job or batch.
        :param abort_on_timeout: abort the jobs in flight when ``timeout`` passes.
        :param max_upload_bytes: most bytes per upload (default and limit: 100 MB for 2.0, 10 MB for 1.0).
        :param max_records_per_upload: most records per upload (2.0 default 50,000; 1.0 limit 10,000).
        :param concurrency_mode: 1.0: ``Parallel`` or ``Serial``.
        :param assignment_rule_id: 2.0: assignment rule for cases or leads.
        :param column_delimiter: 2.0: ``COMMA``, ``TAB``... (1.0 is always ``COMMA``).
        :param line_ending: 2.0: ``LF`` or ``CRLF``.
        :param raise_on_failure: raise when a job or batch failed (after writing the files).
        :param on_progress: called after each poll.
        :param resume_key: ``wait=False``: names this submission (e.g. the task instance). When
            ``results_dir/_chunks`` holds the unfinished progress of the same key and parameters, it
            is resumed: a job created but not closed (2.0) is aborted and its chunk sent again, a
            batch added but not noted (1.0) is adopted, the 1.0 job is reused while ``Open`` (else
            the rest goes to a new job), the input is read again and the chunks already submitted
            are checked (same rows, bytes and content, else :class:`SalesforceBulkError`) and
            skipped; the returned summary covers every job. A finished submission is returned as
            is. Progress of another key is refused. None: start afresh (earlier progress is dropped).
        :raises SalesforceBulkJobFailedError: a job or batch failed (``.summary`` has the counts).
        :raises SalesforceBulkTimeoutError: a wait exceeded ``timeout``.
        :raises SalesforceBulkInputError: the input turned bad after part of it was submitted.
        """
        if max_concurrent_jobs is None and wait:
            max_concurrent_jobs = DEFAULT_CONCURRENT_UPLOADS
        chunker = self._chunker_args(api, max_upload_bytes, max_records_per_upload, column_delimiter,
                                     1 if max_concurrent_jobs is None else max_concurrent_jobs)
        if api == "2.0":
            wire.v2_ingest_job_body(sobject, operation, external_id_field=external_id_field,
                                    column_delimiter=column_delimiter, line_ending=line_ending,
                                    assignment_rule_id=assignment_rule_id)  # validate before reading input
        else:
            wire.v1_create_job_body(sobject, operation, content_type="CSV", concurrency_mode=concurrency_mode,
                                    external_id_field=external_id_field)
        job_ids: list[str] = []
        v1_job: list[str] = []
        held: dict[str, int] = {}  # job id -> records sent to it (what a stop on bad input reports)
        journal: SubmissionJournal | None = None
        if not wait:
            journal = self._journal(results_dir, resume_key, {
                "api": api, "sobject": sobject, "operation": operation, "external_id_field": external_id_field,
                "concurrency_mode": concurrency_mode, "assignment_rule_id": assignment_rule_id,
                "line_ending": line_ending, **chunker})
            progress = journal.load()
            if progress is not None and progress.manifest is not None:  # an earlier try sent it all
                return self._submitted(progress.manifest)
            if progress is None:
                journal.begin()
            else:
                self._resume(api, journal, progress, job_ids, v1_job, held)

        # 1.0 batches this submission added, this try or an earlier one (a lost reply is settled against them).
        batch_ids: set[str | None] = {entry.get("batch_id") for entry in journal.entries} if journal else set()

        def submit(chunk: Chunk) -> _Upload:
            data = chunk.data()
            tag = digest(data) if journal is not None else ""
            if api == "2.0":
                def create() -> str:
                    return self.create_ingest_job(sobject, operation, external_id_field=external_id_field,
                                                  column_delimiter=column_delimiter, line_ending=line_ending,
                                                  assignment_rule_id=assignment_rule_id)["id"]

                def note(job_id: str, phase: str) -> None:
                    if phase == "aborted":  # aborted before its upload closed: it loaded nothing, not collected
                        job_ids.remove(job_id)
                        held.pop(job_id, None)
                        return
                    if phase == "created":
                        job_ids.append(job_id)
                        held[job_id] = chunk.records
                    if journal is not None:  # noted before any data leaves (a retry can abort the job), and
                        # before the close (a retry finding the job purged knows whether it could have loaded)
                        journal.pending({**entry_of(chunk, job_id, tag), "closing": phase == "closing"})

                upload = _Upload(chunk, self._v2_load_chunk(create, data, note))
            else:
                if not v1_job:
                    v1_job.append(self._created(lambda: self.v1_create_job(
                        sobject, operation, concurrency_mode=concurrency_mode,
                        external_id_field=external_id_field)["id"], "1.0"))
                    job_ids.append(v1_job[0])
                    if journal is not None:
                        journal.set_v1_job(v1_job[0])
                if journal is not None:
                    journal.pending(entry_of(chunk, v1_job[0], tag))
                upload = _Upload(chunk, v1_job[0], self._v1_add_batch_settled(v1_job[0], data, batch_ids))
                batch_ids.add(upload.batch_id)
                held[v1_job[0]] = held.get(v1_job[0], 0) + chunk.records
            if journal is not None:
                journal.done(entry_of(chunk, upload.job_id, tag, upload.batch_id))
            return upload

        if journal is not None:
            kept = journal.local
            if kept is not None and not journal.entries:  # spill straight into the kept copy: nothing to copy
                chunks = CsvChunker(kept, line_ending=line_ending, check=ValueCheck(api), **chunker).chunks(records)
                return self._submit_only(api, chunks, submit, v1_job, job_ids, held, journal,
                                         max_unfinished=max_concurrent_jobs, poll_interval=poll_interval)
        with tempfile.TemporaryDirectory(prefix="sf-bulk-ingest-") as spill_dir:
            chunks = CsvChunker(spill_dir, line_ending=line_ending, check=ValueCheck(api), **chunker).chunks(records)
            if journal is not None:
                return self._submit_only(api, chunks, submit, v1_job, job_ids, held, journal,
                                         max_unfinished=max_concurrent_jobs, poll_interval=poll_interval)
            with IngestResultFiles(results_dir, results_format) as out:
                failure = self._run_window(api, self._guarded(chunks, api, held), submit, out, max_concurrent_jobs,
                                           poll_interval, timeout, abort_on_timeout, on_progress, v1_job)
            summary = self._summary(job_ids, out)
        log.info("Bulk %s %s of %s: %d records, %d processed, %d failed, %d unprocessed (jobs %s)", api, operation,
                 sobject, summary.records, summary.processed, summary.failed, summary.unprocessed, job_ids)
        if failure is not None and raise_on_failure:
            raise SalesforceBulkJobFailedError(failure.job_id, failure.state, failure.message,
                                               batch_id=failure.batch_id, summary=summary)
        return summary

    @staticmethod
    def _chunker_args(api: str, max_bytes: int | None, max_records: int | None, delimiter: str,
                      concurrency: int) -> dict[str, Any]:
        wire.check_choice(api, ("2.0", "1.0"), "api")
        if concurrency < 1:
            raise ValueError(f"max_concurrent_jobs must be at least 1; got {concurrency}")
        if api == "2.0":
            return {"max_bytes": check_v2_upload_size(max_bytes or V2_MAX_UPLOAD_BYTES),
                    "max_records": max_records or V2_DEFAULT_MAX_RECORDS, "delimiter": delimiter}
        if delimiter != "COMMA":
            raise ValueError("Bulk API 1.0 CSV batches are comma-separated: column_delimiter must be COMMA")
        if not 1 <= (max_bytes or V1_MAX_BATCH_BYTES) <= V1_MAX_BATCH_BYTES:
            raise ValueError(f"max_upload_bytes must be between 1 and {V1_MAX_BATCH_BYTES} for Bulk API 1.0")
        if not 1 <= (max_records or V1_MAX_BATCH_RECORDS) <= V1_MAX_BATCH_RECORDS:
            raise ValueError(f"max_records_per_upload must be between 1 and {V1_MAX_BATCH_RECORDS} for Bulk API 1.0")
        return {"max_bytes": max_bytes or V1_MAX_BATCH_BYTES, "max_records": max_records or V1_MAX_BATCH_RECORDS,
                "delimiter": "COMMA"}

    def _v2_load_chunk(self, create: Callable[[], str], data: bytes, note: Callable[[str, bool], None]) -> str:
        """Create a 2.0 job, upload ``data`` and close it, so that no reply lost on the way loads a
        record twice; returns the job id.

        - Creation's reply lost: a job made then is empty and ``Open``; it never loads anything (it
          is left for Salesforce to remove). A new job is created.
        - The upload's reply lost: the data may be in. A second upload would fail the job, so the job
          is aborted (not yet closed, it loaded nothing) and the chunk goes to a new job.
        - The close's reply lost: the job's state says whether it closed; an ``Open`` job is closed again.

        :param create: creates the job and returns its id.
        :param data: the chunk's CSV bytes.
        :param note: told ``(job_id, "created")`` before the upload, ``(job_id, "closing")`` before
            the close, ``(job_id, "aborted")`` when that job is aborted and replaced.
        """
        for _ in range(_LOST_REPLY_ATTEMPTS):
            job_id = self._created(create, "2.0")
            note(job_id, "created")
            try:
                self.upload_job_data(job_id, data)
            except SalesforceOutcomeUnknownError as exc:
                self._quietly(self.abort_job, job_id)
                note(job_id, "aborted")
                log.warning("The upload to Bulk job %s lost its reply (%s): the job is aborted before closing, so it "
                            "loads nothing; the chunk goes to a new job", job_id, exc)
                continue
            except Exception:
                self._quietly(self.abort_job, job_id)
                raise
            note(job_id, "closing")
            try:
                self._close_settled(job_id)
            except Exception:
                self._quietly(self.abort_job, job_id)
                raise
            return job_id
        raise SalesforceBulkError(f"Bulk 2.0 job creation or upload lost its reply {_LOST_REPLY_ATTEMPTS} times in a "
                                  "row: the connection to Salesforce keeps failing; nothing of this chunk was loaded")

    def _v1_add_batch_settled(self, job_id: str, data: bytes, known: set[str | None]) -> str:
        """Add a 1.0 batch; if the reply is lost, the job's batch list tells whether it went in.

        :param job_id: the 1.0 job.
        :param data: the batch's CSV bytes.
        :param known: the job's batches added before this one (by this submission).
        """
        try:
            return self.v1_add_batch(job_id, data)["id"]
        except SalesforceOutcomeUnknownError as exc:
            new = [batch["id"] for batch in self.v1_list_batches(job_id) if batch["id"] not in known]
            if len(new) > 1:
                raise SalesforceBulkError(
                    f"Adding a batch to Bulk 1.0 job {job_id} lost its reply ({exc}), and the job has batches {new} "
                    "this submission did not add: cannot tell which is this chunk's") from exc
            if new:
                log.info("Adding a batch to Bulk 1.0 job %s lost its reply; the batch went in as %s", job_id, new[0])
                return new[0]
            log.warning("Adding a batch to Bulk 1.0 job %s lost its reply and no new batch is there; adding it again",
                        job_id)
            return self.v1_add_batch(job_id, data)["id"]

    @staticmethod
    def _created(create: Callable[[], str], api: str) -> str:
        """The id of the job ``create()`` makes; a creation whose reply is lost is tried again.

        The job a lost reply made is empty and ``Open``: no data is ever added to it, so it loads
        nothing (Salesforce removes it after 7 days). Nothing lists it as this submission's.

        :param create: creates the job and returns its id.
        :param api: ``"2.0"`` or ``"1.0"`` (for the log and the error).
        """
        for _ in range(_LOST_REPLY_ATTEMPTS):
            try:
                return create()
            except SalesforceOutcomeUnknownError as exc:
                log.warning("Bulk API %s job creation lost its reply (%s); any job it made is empty and Open, and "
                            "never loads. Creating another", api, exc)
        raise SalesforceBulkError(f"Bulk API {api} job creation lost its reply {_LOST_REPLY_ATTEMPTS} times in a row: "
                                  "the connection to Salesforce keeps failing; nothing was loaded")

    def _close_settled(self, job_id: str, api: str = "2.0") -> None:
        """Close a job (2.0 ingest, or 1.0); if the reply is lost, its state tells whether it closed
        (a job already ``Closed`` is not closed again: that can be refused)."""
        close, get = (self.close_job, self.get_job) if api == "2.0" else (self.v1_close_job, self.v1_get_job)
        try:
            close(job_id)
        except SalesforceOutcomeUnknownError as exc:
            state = BulkJobState(get(job_id)["state"])
            if state is not BulkJobState.OPEN:
                log.info("Closing Bulk API %s job %s lost its reply (%s); the job is %s, so it closed", api, job_id,
                         exc, state.value)
                return
            close(job_id)

    @staticmethod
    @contextmanager
    def _job_must_exist(job_id: str, api: str, known: Callable[[], str]) -> Iterator[None]:
        """Turn Salesforce's "no such job" into :class:`SalesforceBulkJobPurgedError` (``known()``
        says what is known of its records)."""
        try:
            yield
        except SalesforceSuiteError as exc:
            if job_gone(exc):
                raise SalesforceBulkJobPurgedError(job_id, api, known()) from exc
            raise

    @staticmethod
    def _quietly(action: Callable[..., Any], *args: Any) -> None:
        try:
            action(*args)
        except Exception as exc:  # best effort clean-up; the original error is what matters
            log.warning("Clean-up call %s failed: %s", getattr(action, "__name__", action), exc)

    @staticmethod
    def _summary(job_ids: list[str], out: IngestResultFiles | None, records: int = 0) -> BulkIngestSummary:
        if out is None:
            return BulkIngestSummary(list(job_ids), records, 0, 0, records)
        counts = out.counts
        return BulkIngestSummary(list(job_ids), sum(counts.values()), counts["successful"], counts["failed"],
                                 counts["unprocessed"], out.uri("successful"), out.uri("failed"),
                                 out.uri("unprocessed"))

    def _run_window(self, api: str, chunks: Iterator[Chunk], submit: Callable[[Chunk], _Upload],
                    out: IngestResultFiles, window_size: int, poll_interval: float, timeout: float | None,
                    abort_on_timeout: bool, on_progress: ProgressCallback | None,
                    v1_job: list[str]) -> IngestFailure | None:
        window: deque[_Upload] = deque()
        failure: IngestFailure | None = None

        def finish(upload: _Upload) -> None:
            nonlocal failure
            found = self._collect(api, upload, out, poll_interval, timeout, on_progress)
            failure = failure or found

        try:
            for chunk in chunks:
                if failure is not None or not chunk.records:  # not sent (nothing to send: every row refused)
                    unprocessed(chunk, out)
                    if chunk.path:
                        os.unlink(chunk.path)
                    continue
                window.append(submit(chunk))
                while len(window) >= window_size:
                    finish(window.popleft())
            if v1_job:
                self._close_settled(v1_job[0], "1.0")
            while window:
                finish(window.popleft())
        except SalesforceBulkTimeoutError:
            if abort_on_timeout:
                for upload in window:
                    self._quietly(self.v1_abort_job if api == "1.0" else self.abort_job, upload.job_id)
            raise
        if not sum(out.counts.values()):
            log.info("No records to load: no Bulk job was created")
        return failure

    def _collect(self, api: str, upload: _Upload, out: IngestResultFiles, poll_interval: float,
                 timeout: float | None, on_progress: ProgressCallback | None,
                 keep_spill: bool = False) -> IngestFailure | None:
        """Wait for one upload and write the outcome of each of its rows; the failure, if it failed.
        The spill is removed afterwards unless ``keep_spill`` (the kept copy of a deferred ingest)."""
        chunk = upload.chunk
        gone = self._job_must_exist(upload.job_id, api, lambda: (
            f"It held {_rows_of(entry_of(chunk, upload.job_id, ''))}, uploaded and closed: Salesforce processed "
            "them, so they may be loaded, but their results can no longer be read. Check the org for them before "
            "loading them again (sending them blindly could load them twice)."))
        try:
            if api == "2.0":
                index = index_chunk(chunk)  # client work done while Salesforce processes the job
                try:
                    with gone:
                        self.wait_for_job(upload.job_id, poll_interval=poll_interval, timeout=timeout,
                                          on_progress=on_progress)
                    failure = None
                except SalesforceBulkJobFailedError as exc:
                    failure = IngestFailure(upload.job_id, exc.state.value, exc.state_message)
                try:
                    correlate_v2(chunk, lambda which: self.stream_ingest_results(upload.job_id, which), out, index)
                except SalesforceNotFoundError:  # a job that failed before processing may have no results
                    unprocessed(chunk, out)
                return failure
            assert upload.batch_id is not None
            with gone:
                batch = self._wait_for_batch(upload.job_id, upload.batch_id, poll_interval, timeout, on_progress)
            state = BulkJobState(batch["state"])
            if state is BulkJobState.COMPLETED:
                correlate_v1(chunk, self.v1_batch_results(upload.job_id, upload.batch_id), out)
                return None
            unprocessed(chunk, out)
            if state.is_failure or state is BulkJobState.NOT_PROCESSED:  # an ingest batch: its job was aborted
                return IngestFailure(upload.job_id, state.value,
                                     batch.get("stateMessage") or "batch not processed (its job was aborted)",
                                     upload.batch_id)
            return None
        finally:
            if not keep_spill and os.path.exists(chunk.path):
                os.unlink(chunk.path)

    # -- deferred collection -------------------------------------------------------------------------------
    _MANIFEST = MANIFEST
    _CHUNKS = "_chunks"

    @classmethod
    def _local_chunk_store(cls, results_dir: Source) -> str | None:
        """``results_dir/_chunks`` as a local directory (created), or None when it is remote."""
        from airflow_provider_salesforce_suite.io.formats import to_path

        store = to_path(results_dir) / cls._CHUNKS
        if store.protocol not in ("", "file", "local"):
            return None
        os.makedirs(store.path, exist_ok=True)
        return store.path

    def _journal(self, results_dir: Source, key: str | None, params: Mapping[str, Any]) -> SubmissionJournal:
        from airflow_provider_salesforce_suite.io.formats import to_path

        store = to_path(results_dir) / self._CHUNKS
        local = self._local_chunk_store(results_dir)
        if local is None:
            store.mkdir(parents=True, exist_ok=True)
        return SubmissionJournal(store, local, key, params)

    def _submitted(self, manifest: Mapping[str, Any]) -> BulkIngestSummary:
        records = sum(entry["records"] + len(entry.get("rejected", ())) for entry in manifest["chunks"])
        log.info("Every chunk was submitted by an earlier try (%d records, jobs %s): nothing to send",
                 records, manifest["job_ids"])
        return self._summary(manifest["job_ids"], None, records)

    def _resume(self, api: str, journal: SubmissionJournal, progress: Progress, job_ids: list[str],
                v1_job: list[str], held: dict[str, int]) -> None:
        """Continue an earlier try's submission: settle its pending chunk, take over its jobs."""
        journal.resume(progress)
        if progress.pending is not None:
            entry = self._settle_pending(api, progress.pending, progress.entries, journal)
            if entry is not None:
                journal.done(entry)
        for entry in journal.entries:
            if entry["job_id"] is None:
                continue
            held[entry["job_id"]] = held.get(entry["job_id"], 0) + entry["records"]
        job_ids.extend(held)
        if api == "2.0":  # a job gone since (purged) fails the resume before anything more is sent
            for job_id in held:
                rows = ", ".join(_rows_of(entry) for entry in journal.entries if entry["job_id"] == job_id)
                with self._job_must_exist(job_id, api, lambda rows=rows: _maybe_loaded(rows, journal)):
                    self.get_job(job_id)
        if api == "1.0" and journal.v1_job:
            submitted = [entry for entry in journal.entries if entry["job_id"] == journal.v1_job]
            with self._job_must_exist(journal.v1_job, api, lambda: _maybe_loaded(
                    ", ".join(_rows_of(entry) for entry in submitted) or "no input rows", journal)):
                state = BulkJobState(self.v1_get_job(journal.v1_job)["state"])
            if state is BulkJobState.OPEN:
                v1_job.append(journal.v1_job)
                if journal.v1_job not in job_ids:
                    job_ids.append(journal.v1_job)
            else:
                log.warning("Bulk 1.0 job %s of an earlier try is %s: any input not yet sent goes to a new job",
                            journal.v1_job, state.value)
        log.info("Resuming a submission: %d records already in job(s) %s; reading the input again to skip them",
                 sum(held.values()), job_ids)

    def _settle_pending(self, api: str, pending: Mapping[str, Any], entries: list[dict[str, Any]],
                        journal: SubmissionJournal) -> dict[str, Any] | None:
        """Whether the chunk an earlier try was sending went in: its entry (with the 1.0 batch id)
        if it did, None if it must be sent again (a 2.0 job left ``Open`` is aborted first)."""
        job_id = pending["job_id"]
        rows = _rows_of(pending)
        if api == "2.0":
            try:
                status = evaluate_job(self.get_job(job_id))
            except SalesforceNotFoundError as exc:
                if pending.get("closing"):
                    raise SalesforceBulkJobPurgedError(job_id, api, _maybe_loaded(rows, journal)) from exc
                log.warning("Bulk job %s of an earlier try is gone, and that try stopped before closing its upload: "
                            "it loaded nothing (%s are sent again in a new job)", job_id, rows)
                return None
            if status.state is BulkJobState.OPEN:
                self.abort_job(job_id)
                log.warning("Aborted Bulk job %s: an earlier try created it and stopped before closing its upload "
                            "(%s are sent again in a new job)", job_id, rows)
                return None
            if status.failed and not status.records_processed:
                return None  # aborted or failed before processing a record: nothing of it loaded
            log.info("Bulk job %s of an earlier try is %s: its upload went in (%s are not sent again)", job_id,
                     status.state.value, rows)
            return dict(pending)
        known = {entry["batch_id"] for entry in entries if entry["job_id"] == job_id}
        with self._job_must_exist(job_id, api, lambda: _maybe_loaded(rows, journal)):
            batches = self.v1_list_batches(job_id)
        unknown = [batch["id"] for batch in batches if batch["id"] not in known]
        if not unknown:
            return None
        if len(unknown) > 1:
            raise SalesforceBulkError(
                f"Bulk 1.0 job {job_id} has batches {unknown} that no try noted as submitted: cannot tell which "
                f"input rows they hold. Check them (or abort the job), then remove {journal.location}")
        # The job is this submission's own and only the pending chunk was being added: it is that batch.
        log.info("Batch %s of Bulk 1.0 job %s was added by an earlier try (%s are not sent again)", unknown[0],
                 job_id, rows)
        return {**pending, "batch_id": unknown[0]}

    def _submit_only(self, api: str, chunks: Iterator[Chunk], submit: Callable[[Chunk], _Upload], v1_job: list[str],
                     job_ids: list[str], held: dict[str, int], journal: SubmissionJournal,
                     *, max_unfinished: int | None = None, poll_interval: float = 5.0) -> BulkIngestSummary:
        """Upload every chunk not yet submitted, keeping its spill in ``results_dir/_chunks`` (copied
        there unless it was spilled there) before its data leaves; ``submit`` notes each step in the
        journal and the manifest :meth:`collect_ingest_results` reads comes last. When resuming, the
        chunks an earlier try submitted are read again, checked against the journal and skipped.
        ``max_unfinished``: most 2.0 jobs not yet finished (None: no bound), polled every
        ``poll_interval`` seconds while an upload waits for room."""
        store, local = journal.store, journal.local
        in_flight = deque(job_ids) if api == "2.0" and max_unfinished is not None else None
        resumed = len(journal.entries)
        checked = records_read = 0
        for chunk in self._guarded(chunks, api, held, journal):
            records_read = chunk.last_row
            if chunk.index < resumed:
                journal.check(chunk, journal.entries[chunk.index])
                if chunk.path:
                    os.unlink(chunk.path)
                checked += 1
                continue
            if not chunk.records:  # every row refused before upload: noted so collection reports them
                journal.done(entry_of(chunk, None, ""))
                continue
            if in_flight is not None:
                self._wait_for_room(in_flight, max_unfinished, poll_interval)  # type: ignore[arg-type]
            copied = local is None or os.path.dirname(chunk.path) != local
            if copied:
                with open(chunk.path, "rb") as spill, (store / os.path.basename(chunk.path)).open("wb") as kept:
                    shutil.copyfileobj(spill, kept, SPILL_COPY_BYTES)
            upload = submit(chunk)
            if in_flight is not None:
                in_flight.append(upload.job_id)
            if copied:
                os.unlink(chunk.path)
        if checked < resumed:
            raise journal.short_input(records_read)
        if v1_job:
            self._close_settled(v1_job[0], "1.0")
        journal.finish(api, job_ids)
        records = sum(entry["records"] + len(entry.get("rejected", ())) for entry in journal.entries)
        # The caller collects (collect_ingest_results) or hands the ids to a sensor: no claim here.
        log.info("Submitted %d records in %d upload(s): Bulk job(s) %s", records, len(journal.entries), job_ids)
        return self._summary(job_ids, None, records)

    def _wait_for_room(self, in_flight: deque[str], most: int, poll_interval: float) -> None:
        """Return once fewer than ``most`` of the ``in_flight`` 2.0 jobs are unfinished (dropping the
        finished ones); polls the unfinished ones every ``poll_interval`` seconds meanwhile."""
        delay = min(poll_interval, FIRST_POLL_DELAY)
        while len(in_flight) >= most:
            for job_id in list(in_flight):
                if evaluate_job(self.get_job(job_id)).done:
                    in_flight.remove(job_id)
            if len(in_flight) >= most:
                log.info("%d Bulk jobs in flight (max_concurrent_jobs=%d): waiting %.1fs for one to finish",
                         len(in_flight), most, delay)
                time.sleep(delay)
                delay = min(delay * 2, poll_interval)

    # -- input that turns bad part-way ---------------------------------------------------------------------
    def _guarded(self, chunks: Iterator[Chunk], api: str, held: dict[str, int],
                 journal: SubmissionJournal | None = None) -> Iterator[Chunk]:
        """``chunks``, stopping the submitted jobs when the input turns bad part-way (a ``ValueError``:
        :class:`~airflow_provider_salesforce_suite.io.RecordFileError` names the line, the chunker the
        record); bad input before any job is raised as it is. Other errors (reading a remote file...)
        leave the jobs as they are: a resumable submission picks them up on retry."""
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except ValueError as exc:
                if not held:
                    raise
                self._stop_on_bad_input(api, held, exc, journal)
            except Exception:
                if held:
                    log.warning("Reading the input failed after job(s) %s were submitted; they are left as they are",
                                list(held))
                raise
            yield chunk

    def _stop_on_bad_input(self, api: str, held: dict[str, int], exc: ValueError,
                           journal: SubmissionJournal | None) -> NoReturn:
        jobs = [self._stop_job(api, job_id, records) for job_id, records in held.items()]
        note = ""
        if journal is not None and journal.key is not None:
            note = (f"The submission is kept in {journal.location}: a retry with the same input stops here again "
                    "without sending anything; once the input is fixed (rows already submitted unchanged), a retry "
                    "sends only the rest and reports the rows the aborted jobs did not process as unprocessed. To "
                    f"submit everything again instead, remove {journal.location} (finished jobs' rows would load "
                    "twice).")
        raise SalesforceBulkInputError(str(exc), jobs, api, note) from exc

    def _stop_job(self, api: str, job_id: str, records: int) -> StoppedJob:
        """Abort ``job_id`` unless it finished (2.0) or was closed (1.0); what it holds afterwards."""
        get = self.get_job if api == "2.0" else self.v1_get_job
        try:
            was = BulkJobState(get(job_id)["state"])
            if (not was.is_terminal) if api == "2.0" else (was is BulkJobState.OPEN):
                self._quietly(self.abort_job if api == "2.0" else self.v1_abort_job, job_id)
            status = evaluate_job(get(job_id), api)  # type: ignore[arg-type]
            batches = (dict(Counter(BulkJobState(b["state"]).value for b in self.v1_list_batches(job_id)))
                       if api == "1.0" else None)
        except SalesforceSuiteError as error:
            log.warning("Could not read or stop Bulk job %s: %s", job_id, error)
            return StoppedJob(job_id, records, None)
        aborted = status.state is BulkJobState.ABORTED and was is not BulkJobState.ABORTED
        return StoppedJob(job_id, records, status.state.value, was.value, aborted, status.records_processed,
                          status.records_failed, batches)

    def collect_ingest_results(self, results_dir: Source, *, results_format: str = "csv",
                               poll_interval: float = 5.0, timeout: float | None = None,
                               raise_on_failure: bool = True,
                               on_progress: ProgressCallback | None = None) -> BulkIngestSummary:
        """Write the result files of an ``ingest(..., wait=False)`` once its jobs are done (e.g.
        after a trigger fired), from the spills and manifest it kept in ``results_dir/_chunks``.
        The kept spills are read in place when ``results_dir`` is local (else copied to a local
        temporary file one at a time) and left there, so a collection that crashes can run again.

        :param results_dir: the ``results_dir`` given to ``ingest``.
        :param results_format: ``csv``, ``jsonl`` or ``parquet``.
        :param poll_interval: seconds between polls of jobs not yet done.
        :param timeout: seconds to wait for all the jobs together.
        :param raise_on_failure: raise when a job or batch failed (after writing the files).
        :param on_progress: called after each poll of a job not yet done.
        :raises SalesforceBulkTimeoutError: ``timeout`` passed (the files are not written).
        """
        import json

        from airflow_provider_salesforce_suite.io.formats import to_path

        store = to_path(results_dir) / self._CHUNKS
        with (store / self._MANIFEST).open("r") as manifest:
            plan = json.load(manifest)
        local = self._local_chunk_store(results_dir)
        failure: IngestFailure | None = None
        deadline = None if timeout is None else time.monotonic() + timeout
        with tempfile.TemporaryDirectory(prefix="sf-bulk-collect-") as spill_dir, \
                IngestResultFiles(results_dir, results_format) as out:
            for entry in plan["chunks"]:
                if not entry["file"]:
                    path = ""
                elif local is not None:
                    path = os.path.join(local, entry["file"])
                else:
                    path = os.path.join(spill_dir, entry["file"])
                    with (store / entry["file"]).open("rb") as kept, open(path, "wb") as spill:
                        shutil.copyfileobj(kept, spill, SPILL_COPY_BYTES)
                chunk = Chunk(entry["index"], path, entry["columns"], entry["first_row"], entry["records"],
                              entry["size"], entry["delimiter"], tuple(entry.get("rejected", ())))
                if entry["job_id"] is None:  # nothing of it was uploaded (every row refused)
                    unprocessed(chunk, out)
                    continue
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                found = self._collect(plan["api"], _Upload(chunk, entry["job_id"], entry["batch_id"]), out,
                                      poll_interval, left, on_progress, keep_spill=local is not None)
                failure = failure or found
        summary = self._summary(plan["job_ids"], out)
        if failure is not None and raise_on_failure:
            raise SalesforceBulkJobFailedError(failure.job_id, failure.state, failure.message,
                                               batch_id=failure.batch_id, summary=summary)
        return summary

    # -- extract -------------------------------------------------------------------------------------------
    def extract(self, soql: str, destination: Source, *, format: str | None = None, api: BulkApi = "2.0",
                include_deleted: bool = False, pk_chunking: Mapping[str, Any] | bool | None = None,
                sobject: str | None = None, max_records: int | None = None, poll_interval: float = 5.0,
                timeout: float | None = None, abort_on_timeout: bool = False,
                field_types: Mapping[str, str] | None = None,
                on_progress: ProgressCallback | None = None, max_parallel_pages: int = 1) -> BulkExtractSummary:
        """Run a Bulk query and stream its results into ``destination`` in constant memory.

        CSV is copied through byte for byte (one header); JSON Lines and Parquet are written by
        :class:`~airflow_provider_salesforce_suite.io.writers.RecordWriter` from the parsed CSV
        (empty cells are nulls; ``field_types`` give typed values). Pages are fetched one after another (each locator comes with the
        previous page), or ``max_parallel_pages`` at a time (2.0, API 58.0+), gzip-compressed on the
        wire. A failed write leaves no destination file.

        :param soql: the query.
        :param destination: local path, URI or ``ObjectStoragePath``.
        :param format: ``csv``, ``jsonl``, ``parquet`` (``csv.gz``, ``jsonl.gz``); default from the suffix.
        :param api: ``"2.0"`` or ``"1.0"``.
        :param include_deleted: ``queryAll``.
        :param pk_chunking: 1.0 only: True or PK chunking options; the chunk batches' results are concatenated.
        :param sobject: 1.0: the job's sObject (default: the query's FROM object).
        :param max_records: 2.0: ``maxRecords`` per results page.
        :param poll_interval: seconds between polls.
        :param timeout: seconds to wait for the job.
        :param abort_on_timeout: abort the job when ``timeout`` passes.
        :param field_types: JSON Lines/Parquet: column -> Salesforce field type (``describe``), for
            booleans and numbers instead of text.
        :param on_progress: called after each poll.
        :param max_parallel_pages: 2.0: result pages downloaded at once (see :meth:`stream_query_results`).
        """
        from airflow_provider_salesforce_suite.io.formats import detect_format

        wire.check_choice(api, ("2.0", "1.0"), "api")
        detect_format(destination, format)  # validate before creating a job
        check_parallel_pages(max_parallel_pages, api)
        if pk_chunking and api != "1.0":
            raise ValueError("pk_chunking is a Bulk API 1.0 option: use api='1.0'")
        job_id = self.submit_query_job(soql, api=api, sobject=sobject, include_deleted=include_deleted,
                                       pk_chunking=pk_chunking)
        if api == "2.0":
            with self._aborting_on_timeout(abort_on_timeout, lambda: self.abort_job(job_id, kind="query")):
                self.wait_for_job(job_id, kind="query", poll_interval=poll_interval, timeout=timeout,
                                  on_progress=on_progress)
        else:
            with self._aborting_on_timeout(abort_on_timeout, lambda: self.v1_abort_job(job_id)):
                self.wait_for_job(job_id, api="1.0", poll_interval=poll_interval, timeout=timeout,
                                  on_progress=on_progress)
        return self.write_query_results(job_id, destination, api=api, format=format, max_records=max_records,
                                        field_types=field_types, max_parallel_pages=max_parallel_pages)

    def write_query_results(self, job_id: str, destination: Source, *, api: BulkApi = "2.0",
                            format: str | None = None, batch_ids: Iterable[str] | None = None,
                            max_records: int | None = None,
                            field_types: Mapping[str, str] | None = None,
                            max_parallel_pages: int = 1) -> BulkExtractSummary:
        """Stream the results of a finished query job into ``destination`` in constant memory.

        This is the second half of :meth:`extract`, for a job created and waited for elsewhere
        (e.g. by a deferred operator). CSV is copied through byte for byte with one header; JSON
        Lines and Parquet are written from the parsed CSV (empty cells are nulls). A failed write
        leaves no destination file.

        :param job_id: the query job (2.0: ``JobComplete``; 1.0: no batch queued or in progress;
            an ``Open`` 1.0 job is closed first).
        :param destination: local path, URI or ``ObjectStoragePath``.
        :param api: ``"2.0"`` or ``"1.0"``.
        :param format: ``csv``, ``jsonl``, ``parquet`` (``csv.gz``, ``jsonl.gz``); default from the suffix.
        :param batch_ids: 1.0: only these batches' results (default: every ``Completed`` batch, which
            with PK chunking are the chunk batches), in Salesforce's batch order.
        :param max_records: 2.0: ``maxRecords`` per results page.
        :param field_types: JSON Lines/Parquet: column -> Salesforce field type, for typed values.
        :param max_parallel_pages: 2.0: result pages downloaded at once (see :meth:`stream_query_results`).
        :raises SalesforceBulkJobFailedError: the job, or one of its batches, failed or was aborted
            (with Salesforce's message).
        """
        from airflow_provider_salesforce_suite.io.formats import detect_format

        fmt, gzipped = detect_format(destination, format)
        wire.check_choice(api, ("2.0", "1.0"), "api")
        if batch_ids is not None and api != "1.0":
            raise ValueError("batch_ids are Bulk API 1.0 batches: use api='1.0'")
        check_parallel_pages(max_parallel_pages, api)
        if api == "2.0":
            status = evaluate_job(self.get_job(job_id, kind="query"))
            if status.failed:
                raise SalesforceBulkJobFailedError(job_id, status.state, status.message)
            records, stream = status.records_processed, self.stream_query_results(
                job_id, max_records=max_records, max_parallel_pages=max_parallel_pages)
        else:
            records, stream = self._v1_query_results(job_id, batch_ids)
        written = self._write_extract(stream, destination, fmt, gzipped, field_types)
        if written is not None:
            records = written
        log.info("Bulk %s query job %s: %d records written to %s", api, job_id, records, destination)
        return BulkExtractSummary(job_id, records, str(destination), fmt)

    @contextmanager
    def _aborting_on_timeout(self, enabled: bool, abort: Callable[[], Any]) -> Iterator[None]:
        try:
            yield
        except SalesforceBulkTimeoutError:
            if enabled:
                self._quietly(abort)
            raise

    def submit_query_job(self, soql: str, *, api: BulkApi = "2.0", sobject: str | None = None,
                         include_deleted: bool = False, pk_chunking: Mapping[str, Any] | bool | None = None) -> str:
        """Create a query job (1.0: the job and its SOQL batch) and return its id. A creation whose
        reply is lost is tried again (the job it may have made only reads); a lost reply to adding
        the 1.0 batch is settled by the job's batch list, so the query is never in the job twice
        (its rows would be written twice).

        :param soql: the query.
        :param api: ``"2.0"`` or ``"1.0"``.
        :param sobject: 1.0: the queried object (default: read from ``FROM``).
        :param include_deleted: ``queryAll``.
        :param pk_chunking: 1.0: PK chunking (True or ``{"chunkSize": n}``).
        """
        if api == "2.0":
            return self._created(lambda: self.create_query_job(soql, include_deleted=include_deleted)["id"], api)
        if sobject is None:
            found = _FROM.search(soql)
            if not found:
                raise ValueError("cannot tell the sObject of the query: pass sobject=")
            sobject = found.group(1)
        job_id = self._created(lambda: self.v1_create_job(sobject, "queryAll" if include_deleted else "query",
                                                          pk_chunking=pk_chunking)["id"], api)
        try:
            self.v1_add_batch(job_id, soql.encode("utf-8"))
        except SalesforceOutcomeUnknownError as exc:
            # the job is this call's own: any batch in it (PK chunking adds more) is the query's
            if self.v1_list_batches(job_id):
                log.info("Adding the query batch to Bulk 1.0 job %s lost its reply (%s); the batch went in", job_id,
                         exc)
            else:
                self.v1_add_batch(job_id, soql.encode("utf-8"))
        return job_id

    def _v1_query_results(self, job_id: str, batch_ids: Iterable[str] | None) -> tuple[int, Iterator[bytes]]:
        """Salesforce's record count and the results of a finished 1.0 query job as one CSV stream."""
        status = evaluate_job(self.v1_get_job(job_id), "1.0")
        if status.failed:
            raise SalesforceBulkJobFailedError(job_id, status.state, status.message)
        if status.state is BulkJobState.OPEN:
            self._close_settled(job_id, "1.0")
        batches = self.v1_list_batches(job_id)
        if batch_ids is not None:
            wanted = set(batch_ids)
            if missing := wanted - {b["id"] for b in batches}:
                raise ValueError(f"batches {sorted(missing)} are not batches of job {job_id}")
            batches = [b for b in batches if b["id"] in wanted]
        for batch in batches:
            if BulkJobState(batch["state"]) is BulkJobState.FAILED:
                raise SalesforceBulkJobFailedError(job_id, BulkJobState.FAILED, batch.get("stateMessage"),
                                                   batch_id=batch["id"])
        # With PK chunking the original batch is NotProcessed: its chunks hold the results.
        done = [b for b in batches if BulkJobState(b["state"]) is BulkJobState.COMPLETED]
        records = sum(int(b.get("numberRecordsProcessed") or 0) for b in done)
        documents = (self.v1_query_result(job_id, b["id"], result_id)
                     for b in done for result_id in self.v1_query_result_ids(job_id, b["id"]))
        return records, concat_csv(documents)

    @staticmethod
    def _write_extract(stream: Iterator[bytes], destination: Source, fmt: str, gzipped: bool,
                       field_types: Mapping[str, str] | None) -> int | None:
        """Write the CSV stream; the rows written (None for CSV, whose count comes from Salesforce)."""
        from airflow_provider_salesforce_suite.io.formats import to_path
        from airflow_provider_salesforce_suite.io.writers import RecordWriter

        if fmt == "csv":
            import gzip

            path = to_path(destination)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with path.open("wb") as raw:
                    sink = gzip.GzipFile(fileobj=raw, mode="wb") if gzipped else raw
                    for chunk in stream:
                        sink.write(chunk)
                    if gzipped:
                        sink.close()
            except BaseException:
                if path.exists():
                    path.unlink()
                raise
            return None
        rows = csv_rows(stream)
        header = next(rows, None)
        convert = typed_values(header or [], field_types)
        with RecordWriter(destination, fmt + (".gz" if gzipped else ""), columns=header or [],
                          field_types=field_types) as writer:
            page: list[dict[str, Any]] = []
            for row in rows:
                page.append(convert(row))
                if len(page) >= _EXTRACT_PAGE_ROWS:
                    writer.write_page(page)
                    page = []
            writer.write_page(page)
        return writer.rows

