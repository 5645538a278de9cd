"""CRM Analytics operators: SAQL queries, dataset uploads, dataflow/recipe runs, asset reads.

Waiting (uploads, dataflow jobs) happens on the worker, or - ``deferrable=True`` - on the triggerer
through :class:`~airflow_provider_salesforce_suite.triggers.analytics.SalesforceAnalyticsJobTrigger`.
A failed upload or dataflow job fails the task at once with Salesforce's message. Upload and
dataflow operators keep the id in the task state store before waiting
(:class:`~airflow.sdk.ResumableJobMixin`): a retry reconnects instead of submitting again.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from airflow.sdk import BaseOperator, ResumableJobMixin

from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsError, SalesforceAnalyticsHook
from airflow_provider_salesforce_suite.links import SalesforceAnalyticsDatasetLink, analytics_dataset_url
from airflow_provider_salesforce_suite.operators._defer import default_deferrable
from airflow_provider_salesforce_suite.sensors.analytics import finish

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_salesforce_suite.hooks.analytics import AnalyticsStatus

#: Rows a query may push to XCom before the operator refuses (write to a file instead).
DEFAULT_MAX_XCOM_ROWS = 1000
RESOURCES = ("datasets", "dashboards", "lenses", "folders", "dataflows", "recipes", "templates", "annotations",
             "dataflowjobs")


class _AnalyticsOperator(BaseOperator):
    """Connection and hook shared by the analytics operators.

    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param api_version: overrides the connection's API version.
    """

    def __init__(self, *, salesforce_conn_id: str = SalesforceAnalyticsHook.default_conn_name,
                 api_version: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.salesforce_conn_id = salesforce_conn_id
        self.api_version = api_version

    @cached_property
    def hook(self) -> SalesforceAnalyticsHook:
        """The analytics hook on ``salesforce_conn_id``."""
        return SalesforceAnalyticsHook(salesforce_conn_id=self.salesforce_conn_id, api_version=self.api_version)


class _WaitingOperator(ResumableJobMixin, _AnalyticsOperator):
    """Submit an upload or dataflow job, then wait for it on the worker or deferred.

    Resumable (:class:`~airflow.sdk.ResumableJobMixin`): the id is kept in the task state store
    before waiting, so a retry after a worker crash reconnects to the running upload or job, or
    collects a finished one, instead of submitting it again. A failed one fails the retry with
    Salesforce's message, as on the first try (retrying cannot help); an upload header never set
    to ``Process`` (``New``) was never loaded, so the retry uploads again.

    :param wait: wait until processed (else return as soon as it is submitted).
    :param deferrable: wait on the triggerer; default ``[operators] default_deferrable``.
    :param poll_interval: seconds between status checks.
    :param wait_timeout: seconds to wait in all (None: no limit).
    :param durable: keep the id in the task state store (ResumableJobMixin).
    """

    _kind = "upload"

    def __init__(self, *, wait: bool = True, deferrable: bool | None = None, poll_interval: float = 10.0,
                 wait_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait = wait
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout

    def execute(self, context: Context) -> Any:
        return self.execute_resumable(context)

    def _submit(self, context: Context) -> dict[str, Any]:
        raise NotImplementedError

    def _status(self, object_id: str) -> AnalyticsStatus:
        return (self.hook.upload_status(object_id) if self._kind == "upload"
                else self.hook.dataflow_job_status(object_id))

    # -- ResumableJobMixin ----------------------------------------------------------------------------
    def submit_job(self, context: Context) -> str:
        """Submit; returns the ``InsightsExternalData`` or dataflow job id."""
        self._submitted = self._submit(context)
        return self._submitted["id"]

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """``Active`` (reconnect), ``Done`` (collect: a failure fails the task, not resubmitted) or
        Salesforce's ``New`` (an upload never set to Process: nothing loaded, submitted again)."""
        status = self._status(str(external_id))
        if status.done or status.failed:
            return "Done"
        return "New" if self._kind == "upload" and status.status == "New" else "Active"

    def is_job_active(self, status: str) -> bool:
        return status == "Active"

    def is_job_succeeded(self, status: str) -> bool:
        return status == "Done"

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        """Wait (unless ``wait=False``), on the worker or deferred; then the final status."""
        object_id = str(external_id)
        if not self.wait:
            return self.get_job_result(object_id, context)
        if self.deferrable:
            from airflow_provider_salesforce_suite.triggers.analytics import SalesforceAnalyticsJobTrigger

            self.defer(trigger=SalesforceAnalyticsJobTrigger(
                kind=self._kind, object_id=object_id, salesforce_conn_id=self.salesforce_conn_id,
                poll_interval=self.poll_interval, timeout=self.wait_timeout, api_version=self.api_version,
            ), method_name="execute_complete",
                timeout=dt.timedelta(seconds=self.wait_timeout) if self.wait_timeout else None)
        from airflow.sdk.exceptions import AirflowFailException

        try:
            status = self.hook.wait(self._kind, object_id, poll_interval=self.poll_interval,  # type: ignore[arg-type]
                                    timeout=self.wait_timeout)
        except SalesforceAnalyticsError as exc:
            if "ended" in str(exc):  # failed on Salesforce: retrying the task cannot help
                raise AirflowFailException(str(exc)) from None
            raise
        self._submitted = {"id": status.id, "status": status.status, "message": status.message}
        return self._submitted

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        """The status ``{"id", "status", "message"}``: as submitted or waited for by this try, else
        read now (a failure fails the task with Salesforce's message)."""
        submitted = getattr(self, "_submitted", None)
        if submitted is not None and submitted["id"] == str(external_id):
            return submitted
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_provider_salesforce_suite.hooks.analytics import raise_if_failed

        status = self._status(str(external_id))
        try:
            raise_if_failed(self._kind, status)
        except SalesforceAnalyticsError as exc:
            raise AirflowFailException(str(exc)) from None
        return {"id": status.id, "status": status.status, "message": status.message}

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: the final status, or fail with Salesforce's message.

        :param context: the task context.
        :param event: the trigger's payload.
        """
        return finish(event)


class SalesforceAnalyticsQueryOperator(_AnalyticsOperator):
    """Run a SAQL query: its records to XCom, or to a file (``output_uri``) with the path to XCom.

    :param saql: the query (templated).
    :param output_uri: write the records here (CSV, JSON Lines or Parquet, by suffix or
        ``output_format``); the XCom value is then ``{"uri", "rows"}``.
    :param output_format: ``csv``, ``jsonl``, ``parquet`` (``+ ".gz"``).
    :param max_xcom_rows: without ``output_uri``, more records than this fail the task with a
        clear error (XCom lives in the metadata database).
    """

    template_fields: Sequence[str] = ("saql", "output_uri", "salesforce_conn_id")
    template_ext: Sequence[str] = (".saql",)

    def __init__(self, *, saql: str, output_uri: str | None = None, output_format: str | None = None,
                 max_xcom_rows: int = DEFAULT_MAX_XCOM_ROWS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.saql = saql
        self.output_uri = output_uri
        self.output_format = output_format
        self.max_xcom_rows = max_xcom_rows

    def execute(self, context: Context) -> Any:
        result = self.hook.query(self.saql)
        records = result.get("results", {}).get("records") or []
        columns = [c["columnName"] for meta in result.get("results", {}).get("metadata") or []
                   for c in meta.get("columns") or []]
        if self.output_uri:
            from airflow_provider_salesforce_suite.io.writers import RecordWriter

            with RecordWriter(self.output_uri, self.output_format, columns=columns or None) as writer:
                writer.write_page(records)
            self.log.info("Wrote %d SAQL row(s) to %s", len(records), writer.uri)
            return {"uri": writer.uri, "rows": len(records)}
        if len(records) > self.max_xcom_rows:
            raise SalesforceAnalyticsError(
                f"The SAQL query returned {len(records)} rows, more than max_xcom_rows={self.max_xcom_rows}: "
                "set output_uri to write them to a file, add a limit statement, or raise max_xcom_rows")
        return records


class SalesforceAnalyticsUploadOperator(_WaitingOperator):
    """Load a CSV file into a CRM Analytics dataset (``InsightsExternalData``), optionally waiting
    until Salesforce has processed it. The XCom value is ``{"id", "status", "message"}``.

    Without ``metadata``, every column becomes a Text dimension named after the CSV header; give
    the metadata JSON for measures (``Numeric``), dates, or ``isUniqueId`` (Upsert/Delete).

    :param source: CSV file: local path, URI or ``ObjectStoragePath`` (templated).
    :param dataset: the dataset's API name (``EdgemartAlias``) (templated).
    :param metadata: the metadata JSON (dict).
    :param operation: ``Overwrite``, ``Append``, ``Upsert`` or ``Delete``.
    :param dataset_label: the dataset's label (``EdgemartLabel``).
    :param folder: app (folder) id or name.
    :param part_bytes: raw bytes per part (at most 10,000,000).
    Waiting: ``wait``, ``deferrable``, ``poll_interval``, ``wait_timeout``, ``durable``.
    """

    template_fields: Sequence[str] = ("source", "dataset", "dataset_label", "folder", "salesforce_conn_id")
    operator_extra_links = (SalesforceAnalyticsDatasetLink(),)
    _kind = "upload"
    external_id_key = "salesforce_analytics_upload_id"

    def __init__(self, *, source: Any, dataset: str, metadata: Mapping[str, Any] | None = None,
                 operation: str = "Overwrite", dataset_label: str | None = None, folder: str | None = None,
                 part_bytes: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if operation not in ("Overwrite", "Append", "Upsert", "Delete"):
            raise ValueError(f"operation must be Overwrite, Append, Upsert or Delete, not {operation!r}")
        self.source = source
        self.dataset = dataset
        self.metadata = dict(metadata) if metadata is not None else None
        self.operation = operation
        self.dataset_label = dataset_label
        self.folder = folder
        self.part_bytes = part_bytes

    def _submit(self, context: Context) -> dict[str, Any]:
        """Upload the parts, keep the header id, then set it to ``Process``: a retry after a crash in
        between finds it ``New`` (never loaded) and uploads again; after it, it reconnects."""
        extra = {"part_bytes": self.part_bytes} if self.part_bytes else {}
        header_id = self.hook.upload_dataset(self.source, self.dataset, metadata=self.metadata,
                                             operation=self.operation, label=self.dataset_label,  # type: ignore[arg-type]
                                             folder=self.folder, process=False, **extra)
        store = context.get("task_state_store") if self.durable else None
        if store is not None:
            store.set(self.external_id_key, header_id)
        self.hook.process_upload(header_id)
        return {"id": header_id, "status": "Queued", "message": None}

    def post_execute(self, context: Context, result: Any = None) -> None:
        """Store the "CRM Analytics dataset" link (the dataset's id is looked up by its API name)."""
        super().post_execute(context, result)

        def url() -> str | None:
            found = next((d for d in self.hook.iter_datasets(q=self.dataset) if d.get("name") == self.dataset), None)
            return analytics_dataset_url(self.hook.instance_url, found["id"]) if found else None

        SalesforceAnalyticsDatasetLink.persist(context, url)

    # -- OpenLineage (used when apache-airflow-providers-openlineage is installed) -------------------------
    def get_openlineage_facets_on_start(self) -> Any:
        """The CSV file (input); the dataset comes on complete."""
        return self._lineage(complete=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, with the file's columns and its row count (the file is read once more,
        streaming: the upload status has no row count)."""
        return self._lineage(complete=True)

    def _lineage(self, *, complete: bool) -> Any:
        from airflow_provider_salesforce_suite.operators import _lineage

        columns: list[str] = []
        rows = None
        if complete:
            from airflow_provider_salesforce_suite.io import iter_records

            columns = _lineage.file_columns(self.source, "csv")
            try:
                rows = sum(1 for _ in iter_records(self.source, format="csv"))
            except Exception as exc:  # lineage never fails the task
                self.log.warning("OpenLineage: cannot count the rows of %s: %s", self.source, exc)
        outputs = []
        if complete:  # the org's namespace needs the instance URL (see _lineage.org_hook)
            namespace = _lineage.salesforce_namespace(_lineage.org_hook(self).instance_url)
            outputs.append(_lineage.dataset(namespace, f"analytics/{self.dataset}", output=True, fields=columns,
                                            rows=rows))
        return _lineage.operator_lineage([_lineage.file_dataset(self.source, columns, output=False)], outputs)


class SalesforceAnalyticsRunDataflowOperator(_WaitingOperator):
    """Start a dataflow or a recipe, optionally waiting for its job. XCom: ``{"id", "status", "message"}``.

    :param dataflow_id: the ``02K`` dataflow (templated).
    :param recipe_id: or a recipe (runs its target dataflow) (templated).
    Waiting: ``wait``, ``deferrable``, ``poll_interval``, ``wait_timeout``, ``durable``.
    """

    template_fields: Sequence[str] = ("dataflow_id", "recipe_id", "salesforce_conn_id")
    _kind = "dataflow_job"
    external_id_key = "salesforce_analytics_dataflow_job_id"

    def __init__(self, *, dataflow_id: str | None = None, recipe_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if bool(dataflow_id) == bool(recipe_id):
            raise ValueError("give exactly one of dataflow_id and recipe_id")
        self.dataflow_id = dataflow_id
        self.recipe_id = recipe_id

    def _submit(self, context: Context) -> dict[str, Any]:
        job = self.hook.start_dataflow(self.dataflow_id) if self.dataflow_id else self.hook.start_recipe(
            self.recipe_id or "")
        self.log.info("Started dataflow job %s (%s)", job["id"], job.get("status"))
        return {"id": job["id"], "status": job.get("status"), "message": None}


class SalesforceAnalyticsGetOperator(_AnalyticsOperator):
    """List or get CRM Analytics assets into XCom.

    :param resource: ``datasets``, ``dashboards``, ``lenses``, ``folders``, ``dataflows``,
        ``recipes``, ``templates``, ``annotations`` or ``dataflowjobs``.
    :param resource_id: get this one (else list).
    :param filters: list filters: ``folder_id``, ``q``, ``sort``, ``page_size``.
    :param max_items: stop listing after this many items.
    """

    template_fields: Sequence[str] = ("resource", "resource_id", "salesforce_conn_id")

    def __init__(self, *, resource: str, resource_id: str | None = None, filters: Mapping[str, Any] | None = None,
                 max_items: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if resource not in RESOURCES:
            raise ValueError(f"resource must be one of {', '.join(RESOURCES)}, not {resource!r}")
        self.resource = resource
        self.resource_id = resource_id
        self.filters = dict(filters or {})
        self.max_items = max_items

    def execute(self, context: Context) -> Any:
        if self.resource_id:
            if self.resource == "dataflowjobs":
                return self.hook.get_dataflow_job(self.resource_id)
            return self.hook.get_asset(self.resource, self.resource_id)
        items = (self.hook.iter_dataflow_jobs(**self.filters) if self.resource == "dataflowjobs"
                 else self.hook.iter_assets(self.resource, **self.filters))
        out = []
        for item in items:
            if len(out) >= self.max_items:
                break
            out.append(item)
        return out
