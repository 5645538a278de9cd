"""Pardot (Account Engagement) operators: query an object to XCom or a file, upsert prospects from
a file, import prospects, export to a file, and any Pardot call.

Files are streamed both ways (``io.iter_records`` in, ``io.RecordWriter`` out). Import and Export
wait on the worker, or (``deferrable=True``) on the triggerer with
:class:`~airflow_provider_salesforce_suite.triggers.pardot.PardotJobTrigger`; they keep the job id
in the task state store first (:class:`~airflow.sdk.ResumableJobMixin`), so a retry reconnects to
the job instead of submitting a second one.
"""

from __future__ import annotations

import datetime as dt
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from airflow.sdk import BaseOperator, ResumableJobMixin

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError
from airflow_provider_salesforce_suite.hooks.pardot import PardotHook
from airflow_provider_salesforce_suite.operators._defer import default_deferrable

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

DEFAULT_MAX_XCOM_ROWS = 1000
#: Errors kept in an XCom summary (the full list goes to ``errors_uri``).
MAX_ERRORS_IN_SUMMARY = 20


class PardotRecordsFailedError(SalesforceSuiteError):
    """More records were rejected than ``max_failed_records`` allows; ``summary`` is the task summary.

    :param message: the error text.
    :param summary: the summary.
    """

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


def _pages(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    page: list[dict[str, Any]] = []
    for record in records:
        page.append(record)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


class _PardotOperator(BaseOperator):
    """Connection id and the lazily built hook.

    :param pardot_conn_id: Airflow connection id (type ``salesforce_pardot``).
    """

    def __init__(self, *, pardot_conn_id: str = PardotHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pardot_conn_id = pardot_conn_id

    @cached_property
    def hook(self) -> PardotHook:
        """The Pardot hook on ``pardot_conn_id``."""
        return PardotHook(self.pardot_conn_id)

    def _write(self, records: Iterable[dict[str, Any]], output_uri: Any, output_format: str | None,
               columns: Sequence[str] | None, page_size: int = 1000) -> dict[str, Any]:
        from airflow_provider_salesforce_suite.io import RecordWriter

        with RecordWriter(output_uri, output_format, columns=columns) as writer:
            for page in _pages(records, page_size):
                writer.write_page(page)
        return {"output_uri": writer.uri, "format": writer.format, "rows": writer.rows,
                "columns": writer.output_columns}


class PardotQueryOperator(_PardotOperator):
    """Read a v5 object's records (paged with ``nextPageToken``) to ``output_uri``, or to XCom.

    :param object_name: the v5 object (``prospects``, ``visitor-activities``, ``list-memberships`` ...).
    :param fields: fields to return (default: all the object has).
    :param filters: query filters (``{"updatedAtAfter": "{{ data_interval_start | ts }}"}``).
    :param output_uri: file to write (CSV, JSON Lines, Parquet; any object storage); None: XCom.
    :param output_format: overrides the format from the suffix.
    :param max_xcom_rows: without ``output_uri``, more rows than this fail the task.
    :param page_size: records a Pardot page (1..1000).
    """

    template_fields: Sequence[str] = ("object_name", "fields", "filters", "output_uri", "pardot_conn_id")

    def __init__(self, *, object_name: str, fields: Sequence[str] | None = None,
                 filters: Mapping[str, Any] | None = None, output_uri: str | ObjectStoragePath | None = None,
                 output_format: str | None = None, max_xcom_rows: int = DEFAULT_MAX_XCOM_ROWS,
                 page_size: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.object_name = object_name
        self.fields = fields
        self.filters = filters
        self.output_uri = output_uri
        self.output_format = output_format
        self.max_xcom_rows = max_xcom_rows
        self.page_size = page_size

    def execute(self, context: Context) -> Any:
        records = self.hook.iter_records(self.object_name, self.fields, filters=self.filters,
                                         page_size=self.page_size)
        if self.output_uri:
            return self._write(records, self.output_uri, self.output_format, self.fields, self.page_size)
        from airflow_provider_salesforce_suite.operators.rest import SalesforceXComLimitError

        rows: list[dict[str, Any]] = []
        for record in records:
            if len(rows) == self.max_xcom_rows:
                raise SalesforceXComLimitError(
                    f"The result has more than max_xcom_rows={self.max_xcom_rows} rows; write it to a file "
                    "with output_uri= (or raise max_xcom_rows)")
            rows.append(record)
        return rows


class PardotUpsertProspectsOperator(_PardotOperator):
    """Upsert prospects from a file, matched by email: v5 ``upsertLatestByEmail`` per record, or v4
    ``batchCreate`` / ``batchUpdate`` 50 at a time (``mode="v4_create"`` / ``"v4_update"``).

    Returns ``{"processed", "succeeded", "failed", "errors": [first few]}``.

    :param input_uri: CSV, JSON Lines or Parquet file of prospects (an ``email`` column).
    :param input_format: overrides the format from the suffix.
    :param mode: ``v5`` (default), ``v4_create`` or ``v4_update``.
    :param max_failed_records: more rejected rows than this fail the task (after all were sent).
    """

    template_fields: Sequence[str] = ("input_uri", "pardot_conn_id")

    def __init__(self, *, input_uri: str | ObjectStoragePath, input_format: str | None = None, mode: str = "v5",
                 max_failed_records: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in ("v5", "v4_create", "v4_update"):
            raise ValueError(f"mode must be 'v5', 'v4_create' or 'v4_update', not {mode!r}")
        self.input_uri = input_uri
        self.input_format = input_format
        self.mode = mode
        self.max_failed_records = max_failed_records

    def _results(self, records: Iterable[dict[str, Any]]) -> Iterator[tuple[Mapping[str, Any], str | None]]:
        from airflow_provider_salesforce_suite.core.errors import SalesforceApiError

        if self.mode != "v5":
            yield from self.hook.v4_batch_prospects(records, self.mode.removeprefix("v4_"))
            return
        for record in records:
            email = str(record.get("email") or "")
            try:
                self.hook.upsert_prospect_by_email(email, record, fields=["id"])
            except SalesforceApiError as exc:
                if exc.status and exc.status >= 500 or exc.error_code == "REQUEST_LIMIT_EXCEEDED":
                    raise  # not the row's fault: stop the run
                yield record, exc.message
            else:
                yield record, None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_salesforce_suite.io import iter_records

        summary: dict[str, Any] = {"processed": 0, "succeeded": 0, "failed": 0, "errors": []}
        for record, error in self._results(iter_records(self.input_uri, format=self.input_format)):
            summary["processed"] += 1
            if error is None:
                summary["succeeded"] += 1
                continue
            summary["failed"] += 1
            if len(summary["errors"]) < MAX_ERRORS_IN_SUMMARY:
                summary["errors"].append({"email": record.get("email"), "error": error})
        self.log.info("Pardot upsert: %d processed, %d failed", summary["processed"], summary["failed"])
        if summary["failed"] > self.max_failed_records:
            raise PardotRecordsFailedError(
                f"{summary['failed']} of {summary['processed']} prospects were rejected "
                f"(max_failed_records={self.max_failed_records}); first: {summary['errors'][:3]}", summary)
        return summary


class _PardotJobOperator(ResumableJobMixin, _PardotOperator):
    """Submit a job, then wait on the worker or defer; subclasses say what to do when it is Complete.

    Resumable (:class:`~airflow.sdk.ResumableJobMixin`): the job id is kept in the task state store
    before waiting, so a retry after a worker crash reconnects to the job while it runs, collects it
    when it is Complete, and submits again only when the job provably changed nothing (see
    :meth:`get_job_status`).

    :param deferrable: wait on the triggerer; default ``[operators] default_deferrable``.
    :param poll_interval: seconds between status checks.
    :param timeout: seconds to wait for the job (None: no limit); the job is left running, and a
        retry reconnects to it.
    :param durable: keep the job id in the task state store (ResumableJobMixin).
    """

    _kind = "import"
    #: States of a job that is still running (reconnect to it).
    _ACTIVE_STATES = frozenset({"Ready", "Waiting", "Processing"})

    def __init__(self, *, deferrable: bool | None = None, poll_interval: float = 5.0,
                 timeout: float | None = 3600.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout

    def _submit(self, context: Context) -> int:
        raise NotImplementedError

    def _finish(self, summary: dict[str, Any]) -> Any:
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        return self.execute_resumable(context)

    # -- ResumableJobMixin ----------------------------------------------------------------------------
    def submit_job(self, context: Context) -> int:
        """Submit the job; returns its id."""
        job_id = self._submit(context)
        self.log.info("Pardot %s %s submitted", self._kind, job_id)
        return job_id

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """Pardot's state, except ``FailedNothingLoaded`` for a Failed job that changed nothing (no
        prospect created or updated: safe to submit again) and ``FailedAfterLoading`` for one that
        did (collected, and the task fails: submitting the rows again is not safe)."""
        from airflow_provider_salesforce_suite.triggers.pardot import poll_job

        status = poll_job(self.hook, self._kind, int(external_id))
        if not status.failed:
            return status.state
        loaded = int(status.info.get("createdCount") or 0) + int(status.info.get("updatedCount") or 0)
        return "FailedAfterLoading" if loaded else "FailedNothingLoaded"

    def is_job_active(self, status: str) -> bool:
        return status in self._ACTIVE_STATES

    def is_job_succeeded(self, status: str) -> bool:
        # Not only success: a job that failed after loading rows is collected (and fails the task).
        # Anything else (an Open import never set Ready, a job that changed nothing) is submitted again.
        return status in ("Complete", "FailedAfterLoading")

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        """Wait for the job on the worker, or defer while it runs (``deferrable``); then collect it."""
        from airflow_provider_salesforce_suite.triggers.pardot import PardotJobTrigger, poll_job

        job_id = int(external_id)
        started = time.monotonic()
        while True:
            status = poll_job(self.hook, self._kind, job_id)
            if status.done or status.failed:
                return self.get_job_result(job_id, context)
            if self.deferrable:
                self.defer(trigger=PardotJobTrigger(kind=self._kind, job_id=job_id, pardot_conn_id=self.pardot_conn_id,
                                                    poll_interval=self.poll_interval, timeout=self.timeout),
                           method_name="execute_complete",
                           timeout=dt.timedelta(seconds=self.timeout) if self.timeout else None)
            if self.timeout is not None and time.monotonic() - started > self.timeout:
                raise TimeoutError(f"Pardot {self._kind} {job_id} still {status.state} after {self.timeout:g}s "
                                   "(left running: a retry reconnects to it)")
            time.sleep(self.poll_interval)

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        """Collect the finished job once (the mixin may ask twice): :meth:`_finish`, or fail the
        task when the job Failed."""
        job_id = int(external_id)
        collected = getattr(self, "_collected", None)
        if collected is None or collected[0] != job_id:
            from airflow_provider_salesforce_suite.triggers.pardot import poll_job

            status = poll_job(self.hook, self._kind, job_id)
            if not status.done:
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(f"Pardot {self._kind} {job_id} ended {status.state}")
            self._collected = collected = (job_id, self._finish(status.summary()))
        return collected[1]

    def _keep(self, context: Context, job_id: int) -> None:
        """Keep a job id in the task state store now, before the mixin would (durable only)."""
        store = context.get("task_state_store") if self.durable else None
        if store is not None:
            store.set(self.external_id_key, job_id)

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger fired.

        :param context: the task context.
        :param event: the trigger's payload.
        """
        from airflow_provider_salesforce_suite.triggers.pardot import event_result

        job = (event or {}).get("job") if isinstance(event, Mapping) else None
        return self._finish(event_result(event, self._kind, int((job or {}).get("job_id") or 0)))


class PardotImportOperator(_PardotJobOperator):
    """Import prospects from a file with the Import API (create, CSV batches, ``Ready``), wait, report.

    Returns the import summary (``job_id``, ``state``, ``createdCount``, ``updatedCount``,
    ``errorCount``); rejected rows go to ``errors_uri`` when given.

    :param input_uri: CSV, JSON Lines or Parquet file of prospects (an ``email`` column).
    :param input_format: overrides the format from the suffix.
    :param operation: ``Upsert`` (default) or ``Create``.
    :param errors_uri: where to write the rejected rows (input columns + ``error``).
    :param max_failed_records: more rejected rows than this fail the task (None: never).
    :param batch_rows: rows a batch file.
    Other parameters: ``pardot_conn_id``, ``deferrable``, ``poll_interval``, ``timeout``, ``durable``.
    """

    template_fields: Sequence[str] = ("input_uri", "errors_uri", "pardot_conn_id")
    _kind = "import"
    external_id_key = "salesforce_pardot_import_id"

    def __init__(self, *, input_uri: str | ObjectStoragePath, input_format: str | None = None,
                 operation: str = "Upsert", errors_uri: str | ObjectStoragePath | None = None,
                 max_failed_records: int | None = None, batch_rows: int = 50_000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if operation not in ("Upsert", "Create"):
            raise ValueError(f"operation must be 'Upsert' or 'Create', not {operation!r}")
        self.input_uri = input_uri
        self.input_format = input_format
        self.operation = operation
        self.errors_uri = errors_uri
        self.max_failed_records = max_failed_records
        self.batch_rows = batch_rows

    def _submit(self, context: Context) -> int:
        """Create the import, upload the batches, set it ``Ready``. The import id is kept as soon as
        it is created: a retry after a crash before ``Ready`` finds it Open (Pardot processes
        nothing until then and has no call to cancel it), leaves it, and submits a new import."""
        from airflow_provider_salesforce_suite.io import iter_records

        return self.hook.import_records(iter_records(self.input_uri, format=self.input_format), self.operation,
                                        self.batch_rows, on_created=lambda job_id: self._keep(context, job_id))

    def _finish(self, summary: dict[str, Any]) -> Any:
        failed = int(summary.get("errorCount") or 0)
        if failed and self.errors_uri:
            written = self._write(self.hook.iter_import_errors(summary["job_id"]), self.errors_uri, None, None)
            summary["errors_uri"] = written["output_uri"]
        self.log.info("Pardot import %s: %s created, %s updated, %d failed", summary["job_id"],
                      summary.get("createdCount"), summary.get("updatedCount"), failed)
        if self.max_failed_records is not None and failed > self.max_failed_records:
            raise PardotRecordsFailedError(f"Pardot import {summary['job_id']} rejected {failed} rows "
                                           f"(max_failed_records={self.max_failed_records})", summary)
        self._lineage_result = summary  # for OpenLineage
        return summary

    # -- OpenLineage (used when apache-airflow-providers-openlineage is installed) -------------------------
    def get_openlineage_facets_on_start(self) -> Any:
        """The input file and the business unit's prospects."""
        return self._lineage(None, complete=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, with the file's columns and the prospects created or updated."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return self._lineage(_lineage.task_result(self, task_instance), complete=True)

    def _lineage(self, result: Any, *, complete: bool) -> Any:
        from airflow_provider_salesforce_suite.operators import _lineage

        columns = _lineage.file_columns(self.input_uri, self.input_format) if complete else []
        rows = _lineage.row_count(result, "createdCount", "updatedCount")
        namespace = _lineage.pardot_namespace(self.hook.config.pardot_host)
        return _lineage.operator_lineage(
            [_lineage.file_dataset(self.input_uri, columns, output=False)],
            [_lineage.dataset(namespace, f"{self.hook.business_unit_id}/prospect", output=True, fields=columns,
                              rows=rows)])


class PardotExportOperator(_PardotJobOperator):
    """Export with the Export API (visitor activities, prospects), wait, write the rows to a file.

    Returns ``{"job_id", "output_uri", "format", "rows", "columns"}``.

    :param procedure: e.g. ``visitorActivity_byDateAndType``, ``prospect_byUpdatedAt``.
    :param fields: the columns.
    :param arguments: the procedure's arguments (``createdAfter``, ``updatedAfter`` ...).
    :param output_uri: file to write (CSV, JSON Lines, Parquet; any object storage).
    :param output_format: overrides the format from the suffix.
    Other parameters: ``pardot_conn_id``, ``deferrable``, ``poll_interval``, ``timeout``, ``durable``.
    """

    template_fields: Sequence[str] = ("procedure", "fields", "arguments", "output_uri", "pardot_conn_id")
    _kind = "export"
    external_id_key = "salesforce_pardot_export_id"

    def __init__(self, *, procedure: str, fields: Sequence[str], output_uri: str | ObjectStoragePath,
                 arguments: Mapping[str, Any] | None = None, output_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.procedure = procedure
        self.fields = fields
        self.arguments = arguments
        self.output_uri = output_uri
        self.output_format = output_format

    def _submit(self, context: Context) -> int:
        return self.hook.create_export(self.procedure, self.fields, self.arguments)

    def _finish(self, summary: dict[str, Any]) -> Any:
        written = self._write(self.hook.iter_export_records(summary["job_id"]), self.output_uri,
                              self.output_format, self.fields)
        self._lineage_result = result = {"job_id": summary["job_id"], **written}  # for OpenLineage
        return result

    # -- OpenLineage (used when apache-airflow-providers-openlineage is installed) -------------------------
    def get_openlineage_facets_on_start(self) -> Any:
        """The exported Pardot object (``visitorActivity`` of ``visitorActivity_byDateAndType``) and the file."""
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, with the rows written."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return self._lineage(_lineage.task_result(self, task_instance))

    def _lineage(self, result: Any) -> Any:
        from airflow_provider_salesforce_suite.operators import _lineage

        rows = _lineage.row_count(result, "rows")
        fields = list(self.fields)
        namespace = _lineage.pardot_namespace(self.hook.config.pardot_host)
        source = f"{self.hook.business_unit_id}/{str(self.procedure).split('_', 1)[0]}"
        return _lineage.operator_lineage(
            [_lineage.dataset(namespace, source, output=False, fields=fields, rows=rows)],
            [_lineage.file_dataset(self.output_uri, fields, output=True, rows=rows)])


class PardotCallOperator(_PardotOperator):
    """Any Pardot call; returns the JSON body (or the text when not JSON, None when empty).

    :param method: HTTP method.
    :param path: ``/api/v5/...`` or ``/api/{object}/version/4/do/{op}``.
    :param query_params: query parameters (``params`` is Airflow's own).
    :param json_body: JSON body.
    :param data: form body (v4).
    """

    template_fields: Sequence[str] = ("path", "query_params", "json_body", "data", "pardot_conn_id")

    def __init__(self, *, method: str = "GET", path: str, query_params: Mapping[str, Any] | None = None,
                 json_body: Any = None, data: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method = method.upper()
        self.path = path
        self.query_params = query_params
        self.json_body = json_body
        self.data = data

    def execute(self, context: Context) -> Any:
        response = self.hook.call(self.method, self.path, params=self.query_params, json=self.json_body, data=self.data)
        if not response.content:
            return None
        if "json" in response.headers.get("Content-Type", ""):
            return response.json()
        return response.text
