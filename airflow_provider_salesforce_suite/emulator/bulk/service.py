"""The Bulk worker: job registry, background processing and result bookkeeping for both APIs.

Jobs move through real states over time: the HTTP handlers only record uploads and state
requests; processing runs as tasks on the server's event loop, with the blocking store work in a
small thread pool (the store serializes access with its lock, released between row chunks).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import ids
from ..errors import SalesforceApiError
from ..hold import JobHold
from ..store import RecordResult
from .csvdata import DELIMITERS, minimal, quoted, read_csv
from .ingest import V1_MAX_FIELD_CHARS, InvalidBatch, RowMapper, chunks, error_text, run_ingest
from .jobs import FAILURE, SUCCESS, UNPROCESSED, Batch, Job, JobState, ResultStore, env_float

if TYPE_CHECKING:
    from ..state import EmulatorState

log = logging.getLogger(__name__)

#: Bulk 1.0 batch limits.
MAX_BATCH_RECORDS = 10_000
MAX_BATCH_BYTES = 10_000_000
#: Query result rows per Bulk 1.0 result file.
V1_RESULT_ROWS = 100_000
#: Result positions counting down from here list the results last row first (reverse_results).
_REVERSED = 10**15
#: PK chunking: Salesforce's default and maximum chunk sizes.
PK_DEFAULT_CHUNK, PK_MAX_CHUNK = 100_000, 250_000
#: ``resultPages``: rows per page URL (unless ``maxRecords`` says otherwise) and URLs per response.
RESULT_PAGE_RECORDS, RESULT_PAGES_PER_RESPONSE = 10_000, 5


def encode_locator(start: int, end: int | None = None) -> str:
    """A 2.0 query results locator: base64 of the row offset (``Sforce-Locator``, as Salesforce's
    ``MTAwMDA``), or of ``start-end`` for the slice of one ``resultPages`` URL.

    :param start: first row (0-based).
    :param end: end of the slice (exclusive), for a ``resultPages`` URL.
    """
    return base64.b64encode((str(start) if end is None else f"{start}-{end}").encode()).decode()


def decode_locator(locator: str, count: int) -> tuple[int, int | None]:
    """``(start, end or None)`` of a locator made by :func:`encode_locator`.

    :param locator: the locator.
    :param count: rows of the job (bounds check).
    :raises SalesforceApiError: ``INVALIDLOCATOR`` for anything else.
    """
    try:
        text = base64.b64decode(locator.encode(), validate=True).decode()
        start_text, _, end_text = text.partition("-")
        start, end = int(start_text), (int(end_text) if end_text else None)
    except ValueError:
        raise SalesforceApiError("INVALIDLOCATOR", "Invalid locator: " + locator) from None
    if not 0 <= start <= (count if end is None else end) <= count:
        raise SalesforceApiError("INVALIDLOCATOR", "Invalid locator: " + locator)
    return start, end



@dataclass
class BulkSettings:
    """Knobs tests turn through ``POST /__emulator__/bulk``.

    :param min_in_progress_seconds: a job/batch stays InProgress at least this long.
    :param fail_next: state messages; each makes the next processed job (or 1.0 batch) fail.
    :param v1_queued_seconds: a Bulk 1.0 batch stays ``Queued`` this long before it is processed
        (Salesforce queues batches; aborting the job meanwhile leaves them ``NotProcessed``).
    :param reverse_results: Bulk 2.0 ingest results come last row first. Salesforce does not keep
        the input order in ``successfulResults``/``failedResults`` (it processes a job in internal
        batches, in parallel): clients must not rely on it, and this makes tests show they don't.
    """

    min_in_progress_seconds: float = field(default_factory=lambda: env_float("SF_EMULATOR_BULK_MIN_IN_PROGRESS", 0.0))
    fail_next: list[str] = field(default_factory=list)
    reverse_results: bool = False
    v1_queued_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The settings as the admin API shows them."""
        return {"min_in_progress_seconds": self.min_in_progress_seconds, "fail_next": list(self.fail_next),
                "reverse_results": self.reverse_results, "v1_queued_seconds": self.v1_queued_seconds}


class BulkService:
    """Every Bulk job and batch of one emulator, and the worker that processes them.

    :param state: the emulator state (store, sessions).
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store = state.store
        self.results = ResultStore()
        self.settings = BulkSettings()
        #: the ``hold_jobs`` knob: processed jobs and 1.0 batches stay InProgress while it is shut
        self.job_hold = JobHold()
        self.jobs: dict[str, Job] = {}
        self.batches: dict[str, Batch] = {}
        self._ids = ids.IdGenerator()
        # One worker: processing is Python under the GIL, so a second thread adds no throughput, only
        # contention with the event loop that serves uploads and results (a 1M-row load in 10 jobs
        # took 28 s with two workers, 23 s with one). Jobs wait their turn as UploadComplete.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-worker")
        self._tasks: set[asyncio.Task] = set()
        self._generation = 0

    # -- registry -------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """A fresh 18-char id (``750`` jobs, ``751`` batches, ``752`` results).

        :param prefix: the key prefix.
        """
        return self._ids.new_id(prefix)

    def add_job(self, job: Job) -> Job:
        """Register a new job.

        :param job: the job.
        """
        self.jobs[job.id] = job
        return job

    def delete_job(self, job: Job) -> None:
        """Forget a job, its batches and results.

        :param job: the job.
        """
        self.jobs.pop(job.id, None)
        self.results.forget(job.id, job.uploads)
        for batch_id in job.batch_ids:
            batch = self.batches.pop(batch_id, None)
            if batch is not None:
                self.results.forget(batch.id, [batch.request])

    def reset(self) -> None:
        """Forget every job (emulator reset); running work finishes into the void."""
        self._generation += 1
        for job in self.jobs.values():
            job.abort_requested = True
        self.jobs.clear()
        self.batches.clear()
        self.results.clear()
        self.settings = BulkSettings()
        self.job_hold.set(False)  # held work finishes into the void (generation check)

    def close(self) -> None:
        """Stop the worker threads and remove the results directory."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.results.close()

    # -- scheduling -----------------------------------------------------------------------------

    def schedule(self, coro: Any) -> None:
        """Run ``coro`` in the background on the server loop.

        :param coro: the processing coroutine.
        """
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _blocking(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _hold(self, started: float) -> None:
        left = self.settings.min_in_progress_seconds - (time.monotonic() - started)
        if left > 0:
            await asyncio.sleep(left)

    def _injected_failure(self) -> str | None:
        return self.settings.fail_next.pop(0) if self.settings.fail_next else None

    # -- Bulk 2.0 -------------------------------------------------------------------------------

    async def run_v2(self, job: Job) -> None:
        """Process a 2.0 job (ingest after UploadComplete, query at creation).

        :param job: the job.
        """
        generation = self._generation
        await asyncio.sleep(0)
        if job.state == JobState.ABORTED or generation != self._generation:
            return
        job.set_state(JobState.IN_PROGRESS)
        job.started = True
        started = time.monotonic()
        message = self._injected_failure()
        if message is None:
            try:
                work = self._query_v2 if job.kind == "query" else self._ingest_v2
                await self._blocking(work, job)
            except InvalidBatch as exc:
                message = exc.message
            except SalesforceApiError as exc:
                message = f"{exc.error_code}: {exc.message}"
            except Exception:  # a bug in the emulator: fail the job, keep serving
                log.exception("bulk job %s crashed", job.id)
                message = "UNKNOWN_EXCEPTION: An unexpected error occurred"
        await self._hold(started)
        await self.job_hold.wait()
        job.total_processing_ms = int((time.monotonic() - started) * 1000)
        if job.state == JobState.ABORTED or generation != self._generation:
            return
        job.set_state(JobState.FAILED if message else JobState.JOB_COMPLETE, message)

    def _ingest_v2(self, job: Job) -> None:
        delimiter = DELIMITERS[job.column_delimiter]
        user = job.created_by
        seq = {"n": 0}
        reverse = self.settings.reverse_results
        first_header: list[str] | None = None
        for path in job.uploads:
            header, rows = read_csv(path.read_bytes(), delimiter)
            if first_header is None:
                first_header = header
                job.result_header = minimal(header, delimiter)
            try:
                mapper = RowMapper(self.store, job.object, job.operation, header, job.external_id_field)
            except InvalidBatch:
                self._unprocessed(job, rows, delimiter, seq)
                raise

            def record(chunk: list[list[str]], results: list[RecordResult]) -> None:
                ok, bad = [], []
                for cells, result in zip(chunk, results):
                    seq["n"] += 1
                    position = _REVERSED - seq["n"] if reverse else seq["n"]  # results are read in seq order
                    original = quoted(cells, delimiter)
                    if result.success:
                        ok.append((position, quoted((result.id, result.created), delimiter) + delimiter + original))
                    else:
                        bad.append((position, quoted((result.id or "", error_text(result.errors[0])), delimiter)
                                    + delimiter + original))
                self.results.add(job.id, SUCCESS, ok)
                self.results.add(job.id, FAILURE, bad)
                job.processed += len(chunk)
                job.failed += len(bad)

            left = run_ingest(mapper, rows, user_id=user, external_id_field=job.external_id_field,
                              on_chunk=record, stop=lambda: job.abort_requested)
            if left or job.abort_requested:
                self._unprocessed(job, iter(left), delimiter, seq)

    def _unprocessed(self, job: Job, rows: Iterator[list[str]], delimiter: str, seq: dict[str, int]) -> None:
        for chunk in chunks(rows):
            lines = []
            for cells in chunk:
                seq["n"] += 1
                lines.append((seq["n"], quoted(cells, delimiter)))
            self.results.add(job.id, UNPROCESSED, lines)

    def _query_v2(self, job: Job) -> None:
        columns, rows = self.store.bulk_query(job.query or "", include_deleted=job.operation == "queryAll")
        delimiter = DELIMITERS[job.column_delimiter]
        job.result_header = quoted(columns, delimiter)
        for start in range(0, len(rows), 10_000):
            self.results.add(job.id, SUCCESS, ((start + i + 1, quoted(r, delimiter))
                                               for i, r in enumerate(rows[start:start + 10_000])))
        job.processed = job.result_count = len(rows)

    def query_page(self, job: Job, locator: str | None, max_records: int | None) -> tuple[Iterator[str], str, int]:
        """One page of a 2.0 query job's results.

        :param job: a completed query job.
        :param locator: ``Sforce-Locator`` of the previous page, or the locator of a ``resultPages``
            URL (its page ends where that slice ends); ``None``: the first page.
        :param max_records: page size (default: the rest of the results, or of the slice, as
            Salesforce's ~1 GB pages).
        :returns: ``(row lines, next locator or "null", number of records)``; the next locator is
            a plain one either way, so following ``Sforce-Locator`` from any page reads the rest.
        :raises SalesforceApiError: a malformed locator.
        """
        start, end = decode_locator(locator, job.result_count) if locator else (0, None)
        stop = job.result_count if end is None else end
        size = stop - start if max_records is None else min(max_records, stop - start)
        next_locator = encode_locator(start + size) if start + size < job.result_count else "null"
        return self.results.lines(job.id, (SUCCESS,), start=start + 1, limit=size), next_locator, size

    def result_slices(self, job: Job, locator: str | None, max_records: int | None) -> tuple[list[tuple[int, int]],
                                                                                            int | None]:
        """The next page slices of a 2.0 query job for ``resultPages``.

        :param job: a completed query job.
        :param locator: the ``resultPages`` locator (a plain row offset); ``None``: from the start.
        :param max_records: rows per slice (default :data:`RESULT_PAGE_RECORDS`).
        :returns: up to :data:`RESULT_PAGES_PER_RESPONSE` ``(start, end)`` row ranges (one empty
            range for a job without rows, so its header can be read) and the offset of the next
            ones (None when done).
        :raises SalesforceApiError: a malformed locator.
        """
        start, end = decode_locator(locator, job.result_count) if locator else (0, None)
        if end is not None:
            raise SalesforceApiError("INVALIDLOCATOR", "Invalid locator: " + str(locator))
        size = max_records or RESULT_PAGE_RECORDS
        slices = [(at, min(at + size, job.result_count))
                  for at in range(start, job.result_count, size)][:RESULT_PAGES_PER_RESPONSE]
        if job.result_count == 0:
            slices = [(0, 0)]
        after = slices[-1][1] if slices else start
        return slices, (after if after < job.result_count else None)

    def raw_upload_rows(self, job: Job) -> tuple[str, Iterator[str]]:
        """The header and rows of a job's uploads as sent (a job aborted before processing).

        :param job: the job.
        """
        delimiter = DELIMITERS[job.column_delimiter]
        header = ""
        if job.uploads:
            header = minimal(read_csv(job.uploads[0].read_bytes(), delimiter)[0], delimiter)

        def rows() -> Iterator[str]:
            for path in job.uploads:
                for cells in read_csv(path.read_bytes(), delimiter)[1]:
                    yield quoted(cells, delimiter)

        return header, rows()

    # -- Bulk 1.0 -------------------------------------------------------------------------------

    async def run_v1_batch(self, job: Job, batch: Batch) -> None:
        """Process one 1.0 batch (as soon as it is added, as Salesforce does).

        :param job: the batch's job.
        :param batch: the batch.
        """
        generation = self._generation
        await asyncio.sleep(self.settings.v1_queued_seconds)
        if batch.state != JobState.QUEUED or generation != self._generation:
            return
        if job.state == JobState.ABORTED:
            batch.set_state(JobState.NOT_PROCESSED, "Job aborted")
            return
        batch.set_state(JobState.IN_PROGRESS)
        started = time.monotonic()
        message = self._injected_failure()
        if message is None:
            try:
                work = self._query_v1 if job.kind == "query" else self._ingest_v1
                await self._blocking(work, job, batch)
            except InvalidBatch as exc:
                message = exc.message
            except SalesforceApiError as exc:
                message = f"{'InvalidBatch' if exc.status < 500 else 'UNKNOWN_EXCEPTION'} : "\
                          f"{exc.error_code}: {exc.message}" if job.kind == "ingest" else \
                          f"InvalidBatch : {exc.message.strip()}"
            except Exception:
                log.exception("bulk batch %s crashed", batch.id)
                message = "UNKNOWN_EXCEPTION : An unexpected error occurred"
        await self._hold(started)
        await self.job_hold.wait()
        batch.total_processing_ms = int((time.monotonic() - started) * 1000)
        if generation != self._generation:
            return
        batch.set_state(JobState.FAILED if message else JobState.COMPLETED, message)
        job.system_modstamp = batch.system_modstamp

    def _ingest_v1(self, job: Job, batch: Batch) -> None:
        if batch.records is not None:  # JSON/XML bodies, already parsed
            header = sorted({k for r in batch.records for k in r}, key=lambda k: k.lower())
            rows: Any = ([_text(r.get(k)) for k in header] for r in batch.records)
        else:
            header, rows = read_csv(batch.request.read_bytes())
            rows = list(rows)
            if len(rows) > MAX_BATCH_RECORDS:
                raise InvalidBatch(f"InvalidBatch : Exceeded number of records : {len(rows)}. "
                                   f"Number of records should be less than or equal to {MAX_BATCH_RECORDS}")
        mapper = RowMapper(self.store, job.object, job.operation, header, job.external_id_field, V1_MAX_FIELD_CHARS)
        seq = {"n": 0}

        def record(chunk: list[list[str]], results: list[RecordResult]) -> None:
            lines = []
            for result in results:
                seq["n"] += 1
                error = result.errors[0] if result.errors else None
                lines.append((seq["n"], json.dumps([result.id, result.success, bool(result.created and result.success),
                                                    error and error.error_code, error and error.message,
                                                    error.fields if error else []])))
            self.results.add(batch.id, SUCCESS, lines)
            failed = sum(1 for r in results if not r.success)
            batch.processed += len(chunk)
            batch.failed += failed
            job.processed += len(chunk)
            job.failed += failed

        run_ingest(mapper, rows, user_id=job.created_by, external_id_field=job.external_id_field,
                   on_chunk=record, stop=lambda: False)

    def _query_v1(self, job: Job, batch: Batch) -> None:
        soql = batch.request.read_text(encoding="utf-8")
        columns, rows = self.store.bulk_query(soql, include_deleted=job.operation == "queryAll",
                                              id_range=batch.id_range)
        batch.columns = columns
        for start in range(0, max(len(rows), 1), V1_RESULT_ROWS):
            result_id = self.new_id("752")
            part = rows[start:start + V1_RESULT_ROWS]
            self.results.add(result_id, SUCCESS, ((i + 1, json.dumps(r)) for i, r in enumerate(part)))
            batch.result_ids.append(result_id)
        batch.processed = len(rows)
        job.processed += len(rows)

    def pk_chunk(self, job: Job, batch: Batch) -> list[Batch]:
        """Split a PK-chunked query batch into one batch per Id range (the original is NotProcessed).

        :param job: the job (``pk_chunking`` options set).
        :param batch: the batch the client added.
        """
        options = job.pk_chunking or {}
        try:
            size = int(options.get("chunkSize", PK_DEFAULT_CHUNK))
        except ValueError:
            size = PK_DEFAULT_CHUNK
        size = max(1, min(size, PK_MAX_CHUNK))
        _, id_rows = self.store.bulk_query(f"SELECT Id FROM {job.object} ORDER BY Id",
                                           include_deleted=job.operation == "queryAll")
        all_ids = [r[0] for r in id_rows]
        start_row = options.get("startRow")
        if start_row:
            first = ids.normalize(start_row) or start_row
            all_ids = [i for i in all_ids if i >= first]
        bounds = all_ids[::size] or [None]
        children = []
        for n, lo in enumerate(bounds):
            hi = bounds[n + 1] if n + 1 < len(bounds) else None
            child = Batch(self.new_id("751"), job.id, batch.request, content_type=batch.content_type,
                          id_range=(lo, hi))
            self.batches[child.id] = child
            job.batch_ids.append(child.id)
            children.append(child)
        batch.set_state(JobState.NOT_PROCESSED)
        return children


def _text(value: Any) -> str:
    """A JSON/XML record value as a CSV cell (null -> ``#N/A``, which sets the field to null)."""
    if value is None:
        return "#N/A"
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)



def service_of(request: Any) -> BulkService:
    """The Bulk service of the application serving ``request``.

    :param request: an aiohttp request.
    """
    return request.app[BULK_KEY]


from aiohttp import web  # noqa: E402  (the key needs the class above)

BULK_KEY: web.AppKey[BulkService] = web.AppKey("bulk_service", BulkService)
