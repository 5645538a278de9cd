"""REST API operators: save records from XCom or files, query/search to files or XCom, describe,
composite, Apex REST and any other resource.

Every operator takes ``salesforce_conn_id`` (templated) and builds its
:class:`~airflow_provider_salesforce_suite.hooks.rest.SalesforceRestHook` lazily in ``execute``.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from datetime import datetime
from functools import cached_property
from hashlib import blake2b
from itertools import chain
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Literal, Mapping, Sequence

from airflow.sdk import BaseOperator

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError
from airflow_provider_salesforce_suite.hooks._rest.records import SalesforceInvalidRecordError
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook
from airflow_provider_salesforce_suite.links import SalesforceRecordLink, record_url
from airflow_provider_salesforce_suite.operators._records import (
    base_uri,
    beside_source,
    check_save_arguments,
    conclude,
    open_journal,
    push_summary,
)

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_salesforce_suite.hooks._rest.journal import SaveJournal
    from airflow_provider_salesforce_suite.io import FailedRecordsWriter

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = SalesforceRestHook.default_conn_name
#: ``created_ids`` is part of the save summary only up to this many input records (XCom size).
CREATED_IDS_LIMIT = 1000
DEFAULT_MAX_XCOM_ROWS = 1000
SaveOperation = Literal["insert", "update", "upsert", "delete"]
SAVE_OPERATIONS = ("insert", "update", "upsert", "delete")


class SalesforceRecordsFailedError(SalesforceSuiteError):
    """More records were rejected than ``max_failed_records`` allows; ``summary`` has the counts.

    :param message: the error text.
    :param summary: the save summary (also pushed to XCom under the key ``summary``).
    """

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class SalesforceSaveStoppedError(SalesforceSuiteError):
    """The input turned bad part-way (a malformed row, a record that cannot be sent): the records
    before it were saved (see ``summary`` and the message), nothing after it was sent.

    :param message: the error text (the bad record, the counts, where the results are).
    :param summary: the save summary of the records before it (also pushed to XCom as ``summary``).
    """

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class SalesforceXComLimitError(SalesforceSuiteError, ValueError):
    """A result has more rows than ``max_xcom_rows``: write it to a file with ``output_uri``."""


class _SalesforceRestOperator(BaseOperator):
    """Base of the REST operators: connection id and the lazily built hook.

    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id",)

    def __init__(self, *, salesforce_conn_id: str = DEFAULT_CONN_ID, api_version: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.salesforce_conn_id = salesforce_conn_id
        self.api_version = api_version

    @cached_property
    def hook(self) -> SalesforceRestHook:
        """The REST hook on ``salesforce_conn_id``."""
        return SalesforceRestHook(salesforce_conn_id=self.salesforce_conn_id, api_version=self.api_version)


# -- saving records ----------------------------------------------------------------------------------------
def _run_part(context: Context) -> str:
    """``dag_id/run_id/task_id[-map_index]`` with characters unsafe in object keys replaced."""
    ti = context.get("ti")
    dag_id = getattr(ti, "dag_id", None) or "dag"
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or "run"
    task_id = getattr(ti, "task_id", None) or "task"
    map_index = getattr(ti, "map_index", -1)
    task = task_id if map_index in (None, -1) else f"{task_id}-{map_index}"
    return "/".join(re.sub(r"[^A-Za-z0-9._-]+", "_", str(part)) for part in (dag_id, run_id, task))


class SalesforceSaveRecordsOperator(_SalesforceRestOperator):
    """Insert, update, upsert or delete records through sObject Collections (200 per call, several
    calls in flight), from a list of dicts or a CSV/JSON Lines/Parquet file streamed from any
    ``ObjectStoragePath`` location.

    Every record is attempted; rejected ones are written to the failed-records file (the input
    fields plus ``sf__Error`` and ``sf__Fields``). Then, if more than ``max_failed_records`` failed,
    the task fails (the summary is pushed to XCom under ``summary`` first). The return value
    (XCom) is the summary ``{"operation", "sobject", "records", "succeeded", "failed", "unknown",
    "created_ids", "failed_records_uri", "outcome_unknown_uri"}``; ``created_ids`` (ids of the
    created records, in input order) is there only when the input has at most 1000 records, else None.

    Retry-safe: each chunk's outcome is noted in a journal under ``journal_base_uri`` (the same
    directory on every try of the task instance), so a retry skips the chunks already answered
    and sends only the rest. An insert chunk sent without an answer (a lost reply, a worker killed
    mid-call) is never sent again blindly: with ``idempotency_field`` its records are looked up by
    their keys and only the missing ones are sent; without it they go to the outcome-unknown file
    and the task fails saying so (``unknown`` in the summary). A bad input row stops the save with
    :class:`SalesforceSaveStoppedError` once the calls in flight are answered.

    :param sobject: the sObject, e.g. ``Account``.
    :param operation: ``insert``, ``update``, ``upsert`` or ``delete``.
    :param records: the records (a list of dicts, e.g. from XCom; for delete dicts with ``Id`` or
        bare ids). Exactly one of ``records`` and ``source``.
    :param source: URI, path or ``ObjectStoragePath`` of a ``.csv``, ``.jsonl``/``.ndjson`` or
        ``.parquet`` file (``.gz`` for csv/jsonl); read lazily, never whole. CSV: empty cells
        are not sent, ``#N/A`` sends a null.
    :param source_format: the source's format when its suffix does not tell.
    :param external_id_field: upsert only: the external id field matching records.
    :param idempotency_field: insert only: a text or External ID field of ``sobject`` (e.g.
        ``Load_Key__c``) into which the operator writes a key unique to each input record of this
        task instance (``<digest of dag/run/task>-<input index>``), so that records of a call with
        an unknown outcome can be looked up instead of being sent twice.
    :param all_or_none: roll back every record of a call when one fails.
    :param concurrency: Collections calls in flight at once.
    :param batch_size: records per call (at most 200).
    :param max_failed_records: rejected records tolerated before the task fails (default 0).
    :param failed_records_uri: where to write rejected records. Default: beside ``source``
        (``accounts.csv`` -> ``accounts.failed.csv``), or for ``records`` input
        ``<failed_records_base_uri>/<dag_id>/<run_id>/<task_id>.failed.csv``. Written only when
        a record fails. Records with an unknown outcome go beside it (``.outcome_unknown``
        instead of ``.failed``).
    :param failed_records_base_uri: base of the default failures location for ``records`` input;
        default the ``[salesforce_suite] failed_records_base_uri`` option, else
        ``file://<tmp>/salesforce_suite/failed_records``.
    :param journal_base_uri: base of the journal directory
        ``<journal_base_uri>/<dag_id>/<run_id>/<task_id>[-<map_index>].journal``; default as
        ``failed_records_base_uri``. Removed when the task succeeds.
    :param durable: keep the journal (default; only when run as a task instance, i.e. with ``ti`` in
        the context). ``False``: a retry sends everything again.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = (
        "salesforce_conn_id", "sobject", "records", "source", "source_format", "external_id_field",
        "idempotency_field", "failed_records_uri", "failed_records_base_uri", "journal_base_uri",
    )
    operation: SaveOperation = "insert"
    operator_extra_links = (SalesforceRecordLink(),)

    def __init__(
        self,
        *,
        sobject: str,
        operation: SaveOperation | None = None,
        records: Iterable[Mapping[str, Any] | str] | None = None,
        source: str | ObjectStoragePath | None = None,
        source_format: str | None = None,
        external_id_field: str | None = None,
        idempotency_field: str | None = None,
        all_or_none: bool = False,
        concurrency: int = 4,
        batch_size: int = 200,
        max_failed_records: int = 0,
        failed_records_uri: str | None = None,
        failed_records_base_uri: str | None = None,
        journal_base_uri: str | None = None,
        durable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.operation = operation or type(self).operation
        check_save_arguments(self.operation, SAVE_OPERATIONS, records=records, source=source,
                             external_id_field=external_id_field, max_failed_records=max_failed_records)
        if idempotency_field and self.operation != "insert":
            raise ValueError(f"idempotency_field applies to insert only, not {self.operation} "
                             "(update, upsert and delete are sent again safely)")
        self.sobject = sobject
        self.records = records
        self.source = source
        self.source_format = source_format
        self.external_id_field = external_id_field
        self.idempotency_field = idempotency_field
        self.all_or_none = all_or_none
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.max_failed_records = max_failed_records
        self.failed_records_uri = failed_records_uri
        self.failed_records_base_uri = failed_records_base_uri
        self.journal_base_uri = journal_base_uri
        self.durable = durable

    def _input(self) -> Iterator[Mapping[str, Any] | str]:
        if self.source is not None:
            from airflow_provider_salesforce_suite.io import iter_records

            return iter_records(self.source, format=self.source_format)
        if isinstance(self.records, (str, bytes)) or not isinstance(self.records, Iterable):
            raise TypeError(
                f"records must be a list of dicts, got {type(self.records).__name__} (for a file use source=; "
                "for Jinja-templated XCom set render_template_as_native_obj=True on the DAG)"
            )
        return iter(self.records)

    def _base_uri(self, given: str | None) -> str:
        return base_uri(given, self.failed_records_base_uri)

    def _failures_location(self, context: Context, kind: str = "failed") -> str:
        """Where the records of ``kind`` (``failed`` or ``outcome_unknown``) go."""
        if self.failed_records_uri:
            return _beside(str(self.failed_records_uri), kind)
        if self.source is not None:
            return beside_source(self.source, self.source_format, kind)
        return f"{self._base_uri(None)}/{_run_part(context)}.{kind}.csv"

    def _journal(self, context: Context, run_key: str) -> SaveJournal | None:
        params = {"operation": self.operation, "sobject": self.sobject, "external_id_field": self.external_id_field,
                  "idempotency_field": self.idempotency_field, "batch_size": self.batch_size,
                  "all_or_none": self.all_or_none}
        return open_journal(context, self.durable, f"{self._base_uri(self.journal_base_uri)}/{run_key}.journal",
                            run_key, params)

    def execute(self, context: Context) -> dict[str, Any]:
        run_key = _run_part(context)
        journal = self._journal(context, run_key)
        records = self._input()
        first = next(records, None)
        summary: dict[str, Any] = {
            "operation": self.operation, "sobject": self.sobject, "records": 0, "succeeded": 0, "failed": 0,
            "unknown": 0, "created_ids": [], "failed_records_uri": None, "outcome_unknown_uri": None,
        }
        if first is None:
            if journal is not None:
                journal.check_read(0)  # an input emptied since an earlier try saved part of it is refused
                journal.remove()
            log.info("No input records: nothing to %s on %s", self.operation, self.sobject)
            return summary
        pending: deque[Mapping[str, Any] | str] = deque()
        key_prefix = blake2b(run_key.encode("utf-8"), digest_size=6).hexdigest() if self.idempotency_field else None
        read = 0
        bad_input: list[Exception] = []

        def feed() -> Iterator[Mapping[str, Any] | str]:
            # Keeps each record until its result arrives (bounded by the hook's calls in flight).
            nonlocal read
            try:
                for record in chain([first], records):
                    pending.append(record)
                    if key_prefix is not None and isinstance(record, Mapping):
                        record = {**record, str(self.idempotency_field): f"{key_prefix}-{read}"}
                    read += 1
                    yield record
            except Exception as exc:
                bad_input.append(exc)
                raise

        writers: dict[str, FailedRecordsWriter] = {}

        def write(kind: str, record: Mapping[str, Any] | str, errors: list[dict[str, Any]]) -> None:
            if kind not in writers:
                from airflow_provider_salesforce_suite.io import FailedRecordsWriter

                writers[kind] = FailedRecordsWriter(self._failures_location(context, kind))
            writers[kind].write_failure(record, errors)

        created_ids: list[str] | None = []
        stopped: Exception | None = None
        try:
            results = self.hook.save_records(
                self.operation, self.sobject, feed(), external_id_field=self.external_id_field,
                all_or_none=self.all_or_none, concurrency=self.concurrency, batch_size=self.batch_size,
                idempotency_field=self.idempotency_field, journal=journal,
            )
            try:
                for result in results:
                    record = pending.popleft()
                    if result.index != summary["records"]:
                        raise SalesforceSuiteError(
                            f"Result {result.index} arrived for input record {summary['records']}")
                    summary["records"] += 1
                    if result.success:
                        summary["succeeded"] += 1
                        if summary["succeeded"] == 1:
                            self._first_saved_id = result.id  # the "Salesforce record" link
                        if created_ids is not None and (result.created or (self.operation == "insert" and result.id)):
                            created_ids.append(result.id)
                    elif result.unknown:
                        summary["unknown"] += 1
                        write("outcome_unknown", record, result.errors)
                    else:
                        summary["failed"] += 1
                        write("failed", record, result.errors)
                    if summary["records"] > CREATED_IDS_LIMIT:
                        created_ids = None
            except Exception as exc:
                if not (bad_input and exc is bad_input[0]) and not isinstance(exc, SalesforceInvalidRecordError):
                    raise
                stopped = exc
        finally:
            for writer in writers.values():
                writer.close()  # what was written so far is kept even when the run stops early
            summary["failed_records_uri"] = writers["failed"].uri if "failed" in writers else None
            summary["outcome_unknown_uri"] = writers["outcome_unknown"].uri if "outcome_unknown" in writers else None
        if stopped is not None:
            raise self._stopped(stopped, read, summary, journal, context)
        if pending:
            raise SalesforceSuiteError(f"{len(pending)} input records got no result")
        if journal is not None:
            journal.check_read(read)
        assert summary["succeeded"] + summary["failed"] + summary["unknown"] == summary["records"]
        summary["created_ids"] = created_ids
        log.info("%s %s: %d records, %d succeeded, %d failed, %d outcome unknown%s", self.operation, self.sobject,
                 summary["records"], summary["succeeded"], summary["failed"], summary["unknown"],
                 f"; failed records in {summary['failed_records_uri']}" if summary["failed"] else "")
        problems = []
        if summary["unknown"]:
            problems.append(_unknown_text(summary, self.idempotency_field, journal))
        if summary["failed"] > self.max_failed_records:
            problems.append(
                f"{summary['failed']} of {summary['records']} {self.sobject} records failed to {self.operation} "
                f"(max_failed_records={self.max_failed_records}); see {summary['failed_records_uri']}")
        conclude(context, summary, problems, journal, SalesforceRecordsFailedError)
        self._lineage_result = summary  # for OpenLineage
        return summary

    def _stopped(self, cause: Exception, read: int, summary: dict[str, Any], journal: SaveJournal | None,
                 context: Context) -> SalesforceSaveStoppedError:
        """The error for an input that turned bad part-way (after the calls in flight were answered)."""
        summary["created_ids"] = None
        push_summary(context, summary)
        where = "".join(f"; {what} in {summary[key]}" for what, key in (
            ("failed records", "failed_records_uri"), ("records with an unknown outcome", "outcome_unknown_uri"))
            if summary[key])
        if isinstance(cause, SalesforceInvalidRecordError):
            what = f"An input record cannot be sent: {cause}"
        else:
            what = f"Reading the input failed at input record {read + 1}: {cause}"
        if journal is not None:
            then = (f"Their results are journaled in {journal.location}: a retry of this task with the corrected "
                    "input resumes after them and does not send them again.")
        else:
            then = "durable=False: a retry sends them again."
        return SalesforceSaveStoppedError(
            f"{what}. By then {summary['records']} records (input records 1-"
            f"{summary['records']}) had been saved or answered: {summary['succeeded']} succeeded, "
            f"{summary['failed']} failed, {summary['unknown']} outcome unknown{where}; nothing after them was sent. "
            f"{then}", summary)

    def post_execute(self, context: Context, result: Any = None) -> None:
        """Store the "Salesforce record" link: the first record saved (created or updated)."""
        super().post_execute(context, result)
        record_id = getattr(self, "_first_saved_id", None)
        if record_id and self.operation != "delete":
            SalesforceRecordLink.persist(context, lambda: record_url(self.hook.instance_url, self.sobject, record_id))

    # -- OpenLineage (used when apache-airflow-providers-openlineage is installed) -------------------------
    def get_openlineage_facets_on_start(self) -> Any:
        """The input file (when ``source``); the sObject comes on complete (it needs the instance URL)."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return _lineage.load_facets(self, None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, with the fields saved (typed by describe) and the records that succeeded."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return _lineage.load_facets(self, "succeeded")


def _beside(uri: str, kind: str) -> str:
    """``uri`` for ``failed`` records; for another ``kind`` the same name with ``.<kind>`` in place
    of ``.failed`` (or before the format suffix)."""
    if kind == "failed":
        return uri
    parent, slash, name = uri.rpartition("/")
    gz = ".gz" if name.lower().endswith(".gz") else ""
    stem = name[: len(name) - len(gz)]
    stem, dot, suffix = stem.rpartition(".") if "." in stem else (stem, "", "")
    if stem.endswith(".failed"):
        stem = stem[: -len(".failed")]
    return f"{parent}{slash}{stem}.{kind}{dot}{suffix}{gz}"


def _unknown_text(summary: dict[str, Any], idempotency_field: str | None, journal: SaveJournal | None) -> str:
    """What the task says about records whose insert may or may not have happened."""
    text = (f"{summary['unknown']} of {summary['records']} records were sent to Salesforce without an answer: they "
            f"may or may not have been created. They are in {summary['outcome_unknown_uri']}, and are not sent again "
            "by a retry of this task")
    if idempotency_field:
        return text + f" until their {idempotency_field} keys can be looked up (a retry looks again)"
    return (text + ". Check which of them exist before loading them again, or load with upsert on an external id, "
            "or set idempotency_field= so that such records are looked up instead"
            + (f" (the journal is in {journal.location})" if journal is not None else ""))



class SalesforceCreateRecordsOperator(SalesforceSaveRecordsOperator):
    """Insert records (:class:`SalesforceSaveRecordsOperator` with ``operation="insert"``).

    :param sobject: the sObject. Other parameters: see :class:`SalesforceSaveRecordsOperator`.
    """

    operation: SaveOperation = "insert"


class SalesforceUpdateRecordsOperator(SalesforceSaveRecordsOperator):
    """Update records by ``Id`` (:class:`SalesforceSaveRecordsOperator` with ``operation="update"``).

    :param sobject: the sObject. Other parameters: see :class:`SalesforceSaveRecordsOperator`.
    """

    operation: SaveOperation = "update"


class SalesforceUpsertRecordsOperator(SalesforceSaveRecordsOperator):
    """Upsert records on ``external_id_field`` (:class:`SalesforceSaveRecordsOperator` with
    ``operation="upsert"``).

    :param sobject: the sObject.
    :param external_id_field: the external id field. Other parameters: see
        :class:`SalesforceSaveRecordsOperator`.
    """

    operation: SaveOperation = "upsert"


class SalesforceDeleteRecordsOperator(SalesforceSaveRecordsOperator):
    """Delete records by ``Id`` (:class:`SalesforceSaveRecordsOperator` with ``operation="delete"``).

    :param sobject: the sObject. Other parameters: see :class:`SalesforceSaveRecordsOperator`.
    """

    operation: SaveOperation = "delete"


# -- reading: query, search, get ------------------------------------------------------------------------------
class _RowsOutputOperator(_SalesforceRestOperator):
    """Rows either to a file (page by page, constant memory) or to XCom (capped)."""

    def __init__(self, *, output_uri: str | ObjectStoragePath | None = None, output_format: str | None = None,
                 max_xcom_rows: int = DEFAULT_MAX_XCOM_ROWS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.output_uri = output_uri
        self.output_format = output_format
        self.max_xcom_rows = max_xcom_rows

    def _emit(self, pages: Iterable[list[dict[str, Any]]], *, soql: str | None = None) -> Any:
        if self.output_uri:
            from airflow_provider_salesforce_suite.io import RecordWriter

            with RecordWriter(self.output_uri, self.output_format, soql=soql) as writer:
                for page in pages:
                    writer.write_page(page)
            return {"output_uri": writer.uri, "format": writer.format, "rows": writer.rows,
                    "columns": writer.output_columns}
        from airflow_provider_salesforce_suite.io import strip_attributes

        rows: list[dict[str, Any]] = []
        for page in pages:
            if len(rows) + len(page) > self.max_xcom_rows:
                raise SalesforceXComLimitError(
                    f"The result has more than max_xcom_rows={self.max_xcom_rows} rows; write it to a file "
                    "with output_uri= (or raise max_xcom_rows)"
                )
            rows.extend(strip_attributes(record) for record in page)
        return rows


class SalesforceQueryOperator(_RowsOutputOperator):
    """Run a SOQL query; write the rows to ``output_uri`` page by page (constant memory), or
    return them (without ``attributes``) through XCom up to ``max_xcom_rows``.

    With ``output_uri`` the return value is ``{"output_uri", "format", "rows", "columns"}``; the
    file's columns follow the query's select list, parents flattened to dotted names
    (``Account.Name``), child subqueries as JSON text in CSV and Parquet.

    :param soql: the SOQL query.
    :param include_deleted: use ``queryAll`` (deleted and archived records too).
    :param batch_size: page size hint (200-2000).
    :type output_uri: str | ObjectStoragePath | None
    :param output_uri: URI, path or ``ObjectStoragePath`` of the file to write.
    :type output_format: str | None
    :param output_format: ``csv``, ``jsonl`` or ``parquet`` (``+ ".gz"``); default from the suffix.
    :type max_xcom_rows: int
    :param max_xcom_rows: without ``output_uri``, more rows than this fail the task.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "soql", "output_uri", "output_format")
    template_fields_renderers = {"soql": "sql"}

    def __init__(self, *, soql: str, include_deleted: bool = False, batch_size: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.soql = soql
        self.include_deleted = include_deleted
        self.batch_size = batch_size

    def execute(self, context: Context) -> Any:
        pages = self.hook.query_pages(self.soql, include_deleted=self.include_deleted, batch_size=self.batch_size)
        self._lineage_result = result = self._emit(pages, soql=self.soql)  # for OpenLineage
        return result

    # -- OpenLineage (used when apache-airflow-providers-openlineage is installed) -------------------------
    def get_openlineage_facets_on_start(self) -> Any:
        """The output file (when ``output_uri``); the queried sObject comes on complete."""
        from airflow_provider_salesforce_suite.operators import _lineage

        return _lineage.query_to_file(self, self.soql, self.output_uri, complete=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, with the columns written (typed by describe) and the rows."""
        from airflow_provider_salesforce_suite.operators import _lineage

        result = _lineage.task_result(self, task_instance)
        if isinstance(result, list):  # rows to XCom
            result = {"rows": len(result)}
        return _lineage.query_to_file(self, self.soql, self.output_uri, result, complete=True)


class SalesforceSearchOperator(_RowsOutputOperator):
    """Run a SOSL search; rows to ``output_uri`` or XCom like :class:`SalesforceQueryOperator`.

    :param sosl: the SOSL search, e.g. ``FIND {Acme} RETURNING Account(Id, Name)``.
    :type output_uri: str | ObjectStoragePath | None
    :param output_uri: URI, path or ``ObjectStoragePath`` of the file to write.
    :type output_format: str | None
    :param output_format: ``csv``, ``jsonl`` or ``parquet``; default from the suffix.
    :type max_xcom_rows: int
    :param max_xcom_rows: without ``output_uri``, more rows than this fail the task.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "sosl", "output_uri", "output_format")

    def __init__(self, *, sosl: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sosl = sosl

    def execute(self, context: Context) -> Any:
        return self._emit([self.hook.search(self.sosl)])


class SalesforceGetRecordsOperator(_SalesforceRestOperator):
    """Read records by id (sObject Collections, 2000 ids per call); returns them in id order,
    None for an id that does not exist.

    :param sobject: the sObject.
    :param ids: the record ids.
    :param fields: the fields to read.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "sobject", "ids", "fields")

    def __init__(self, *, sobject: str, ids: Iterable[str], fields: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sobject = sobject
        self.ids = ids
        self.fields = fields

    def execute(self, context: Context) -> list[dict[str, Any] | None]:
        from airflow_provider_salesforce_suite.io import strip_attributes

        ids = [self.ids] if isinstance(self.ids, str) else list(self.ids)
        return [strip_attributes(r) for r in self.hook.get_records(self.sobject, ids, list(self.fields))]


# -- metadata, composite, any resource ----------------------------------------------------------------------
class SalesforceDescribeOperator(_SalesforceRestOperator):
    """Describe one sObject, or the org's sObject list when ``sobject`` is None.

    :param sobject: the sObject, or None for ``describe_global``.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "sobject")

    def __init__(self, *, sobject: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sobject = sobject

    def execute(self, context: Context) -> dict[str, Any]:
        return self.hook.describe(self.sobject) if self.sobject else self.hook.describe_global()


class SalesforceCompositeOperator(_SalesforceRestOperator):
    """Send a Composite request: ``composite`` (≤25 dependent subrequests), ``batch`` (≤25
    independent), ``graph`` (several graphs) or ``tree`` (a record tree of one sObject).

    :param kind: ``composite``, ``batch``, ``graph`` or ``tree``.
    :param subrequests: composite/batch subrequests.
    :param graphs: graph kind: the graphs.
    :param sobject: tree kind: the root sObject.
    :param records: tree kind: the records (with ``attributes.referenceId``).
    :param all_or_none: composite: roll back everything when a subrequest fails.
    :param collate_subrequests: composite: let Salesforce collate subrequests.
    :param halt_on_error: batch: stop at the first failed subrequest.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "subrequests", "graphs", "sobject", "records")
    _KINDS = ("composite", "batch", "graph", "tree")

    def __init__(
        self,
        *,
        kind: Literal["composite", "batch", "graph", "tree"] = "composite",
        subrequests: Sequence[Mapping[str, Any]] | None = None,
        graphs: Sequence[Mapping[str, Any]] | None = None,
        sobject: str | None = None,
        records: Sequence[Mapping[str, Any]] | None = None,
        all_or_none: bool = False,
        collate_subrequests: bool = False,
        halt_on_error: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if kind not in self._KINDS:
            raise ValueError(f"kind must be one of {', '.join(self._KINDS)}, not {kind!r}")
        needed = {"composite": subrequests, "batch": subrequests, "graph": graphs, "tree": records}[kind]
        if needed is None or (kind == "tree" and not sobject):
            what = {"composite": "subrequests=", "batch": "subrequests=", "graph": "graphs=",
                    "tree": "sobject= and records="}[kind]
            raise ValueError(f"kind={kind!r} needs {what}")
        self.kind = kind
        self.subrequests = subrequests
        self.graphs = graphs
        self.sobject = sobject
        self.records = records
        self.all_or_none = all_or_none
        self.collate_subrequests = collate_subrequests
        self.halt_on_error = halt_on_error

    def execute(self, context: Context) -> dict[str, Any]:
        if self.kind == "composite":
            return self.hook.composite(self.subrequests, all_or_none=self.all_or_none,
                                       collate_subrequests=self.collate_subrequests)
        if self.kind == "batch":
            return self.hook.composite_batch(self.subrequests, halt_on_error=self.halt_on_error)
        if self.kind == "graph":
            return self.hook.composite_graph(self.graphs)
        return self.hook.sobject_tree(self.sobject, self.records)


class SalesforceApexRestOperator(_SalesforceRestOperator):
    """Call an Apex REST endpoint (``/services/apexrest/<path>``); returns its parsed response.

    :param path: the endpoint's path, e.g. ``Accounts/summary``.
    :param method: HTTP method.
    :param json: request body (JSON).
    :param query_params: query string parameters.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "path", "method", "json", "query_params")

    def __init__(self, *, path: str, method: str = "GET", json: Any = None,
                 query_params: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.method = method
        self.json = json
        self.query_params = query_params

    def execute(self, context: Context) -> Any:
        return self.hook.apex_rest(self.method.upper(), self.path, json=self.json, params=self.query_params)


class SalesforceRestCallOperator(_SalesforceRestOperator):
    """Call any REST resource; returns the parsed JSON response (None when empty).

    :param path: relative to ``/services/data/vXX.X/`` (``sobjects/Account/listviews``), or an
        absolute ``/services/...`` path.
    :param method: HTTP method.
    :param query_params: query string parameters (``params`` is taken by Airflow: DAG params).
    :param json: request body (JSON).
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "path", "method", "query_params", "json")

    def __init__(self, *, path: str, method: str = "GET", query_params: Mapping[str, Any] | None = None,
                 json: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.method = method
        self.query_params = query_params
        self.json = json

    def execute(self, context: Context) -> Any:
        kwargs: dict[str, Any] = {}
        if self.query_params is not None:
            kwargs["params"] = self.query_params
        if self.json is not None:
            kwargs["json"] = self.json
        return self.hook.call(self.method.upper(), self.path, **kwargs)


# -- changed records --------------------------------------------------------------------------------------------
def _instant(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    raise ValueError(f"{name} must be a datetime or an ISO 8601 string, got {value!r}")


class _ChangedRecordsOperator(_SalesforceRestOperator):
    """Records changed in a window; the window defaults to the run's data interval.

    :param sobject: the sObject.
    :param start: window start (datetime or ISO 8601 text); default ``data_interval_start``.
    :param end: window end; default ``data_interval_end``.
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param api_version: overrides the connection's API version.
    """

    template_fields: Sequence[str] = ("salesforce_conn_id", "sobject", "start", "end")

    def __init__(self, *, sobject: str, start: datetime | str | None = None, end: datetime | str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sobject = sobject
        self.start = start
        self.end = end

    def _window(self, context: Context) -> tuple[datetime, datetime]:
        start = self.start if self.start not in (None, "") else context.get("data_interval_start")
        end = self.end if self.end not in (None, "") else context.get("data_interval_end")
        if start is None or end is None:
            raise ValueError("No window: give start= and end= (this run has no data interval)")
        return _instant(start, "start"), _instant(end, "end")


class SalesforceGetUpdatedOperator(_ChangedRecordsOperator):
    """Ids of records updated in a window (``sobjects/<obj>/updated``): ``{"ids", "latestDateCovered"}``.

    :param sobject: the sObject.
    :param start: window start (datetime or ISO 8601 text); default ``data_interval_start``.
    :param end: window end; default ``data_interval_end``.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        return self.hook.get_updated(self.sobject, *self._window(context))


class SalesforceGetDeletedOperator(_ChangedRecordsOperator):
    """Records deleted in a window (``sobjects/<obj>/deleted``):
    ``{"deletedRecords", "earliestDateAvailable", "latestDateCovered"}``.

    :param sobject: the sObject.
    :param start: window start (datetime or ISO 8601 text); default ``data_interval_start``.
    :param end: window end; default ``data_interval_end``.
    :type salesforce_conn_id: str
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :type api_version: str | None
    :param api_version: overrides the connection's API version.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        return self.hook.get_deleted(self.sobject, *self._window(context))
