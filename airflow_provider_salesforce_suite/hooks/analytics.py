"""CRM Analytics (Wave) REST API hook: assets, SAQL, dataset uploads and dataflow/recipe runs.

List methods are lazy iterators following ``nextPageUrl``. Dataset uploads stream a CSV file
(local or object storage) into ``InsightsExternalDataPart`` parts under 10 MB, gzip when that
makes them smaller, without holding the file in memory. Whether an upload or a dataflow job is
done, failed or still running is decided once, in :func:`evaluate_upload` and
:func:`evaluate_dataflow_job`, for the sync methods, the trigger and the sensor alike.
"""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Literal, Mapping
from urllib.parse import quote

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.io.formats import Source

#: Salesforce's limit on one part's size; parts are cut below it.
MAX_PART_BYTES = 10_000_000
#: Raw bytes per part by default (base64 and JSON framing stay well inside the request limit).
DEFAULT_PART_BYTES = 8 * 1024 * 1024
#: Gzip a part only when it shrinks to this fraction of its size or less.
GZIP_WORTH_RATIO = 0.9
UploadOperation = Literal["Overwrite", "Append", "Upsert", "Delete"]
UPLOAD_DONE = ("Completed", "CompletedWithWarnings")
UPLOAD_FAILED = ("Failed", "NotProcessed")
JOB_DONE = ("Success", "Warning")
JOB_FAILED = ("Failure",)


class SalesforceAnalyticsError(SalesforceSuiteError):
    """An upload or dataflow job failed (its Salesforce message is the text), or bad input."""


@dataclass(frozen=True)
class AnalyticsStatus:
    """One judgement of an upload or dataflow job.

    :param id: the ``InsightsExternalData`` or dataflow job id.
    :param status: Salesforce's status value.
    :param done: finished successfully.
    :param failed: finished unsuccessfully (waiting longer cannot help).
    :param message: Salesforce's ``StatusMessage``/``message``.
    """

    id: str
    status: str
    done: bool
    failed: bool
    message: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (XCom, trigger events)."""
        return {"id": self.id, "status": self.status, "done": self.done, "failed": self.failed,
                "message": self.message}


def evaluate_upload(record: Mapping[str, Any]) -> AnalyticsStatus:
    """Judge an ``InsightsExternalData`` record.

    :param record: the record (``Id``, ``Status``, ``StatusMessage``).
    """
    status = str(record.get("Status") or "New")
    return AnalyticsStatus(str(record.get("Id")), status, status in UPLOAD_DONE, status in UPLOAD_FAILED,
                           record.get("StatusMessage") or None)


def evaluate_dataflow_job(job: Mapping[str, Any]) -> AnalyticsStatus:
    """Judge a dataflow job (``Queued``, ``Running``, ``Success``, ``Warning``, ``Failure``).

    :param job: the dataflow job JSON.
    """
    status = str(job.get("status") or "Queued")
    return AnalyticsStatus(str(job.get("id")), status, status in JOB_DONE, status in JOB_FAILED,
                           job.get("message") or None)


def infer_metadata(header: list[str], alias: str, *, delimiter: str = ",") -> dict[str, Any]:
    """Metadata JSON making every CSV column a Text dimension.

    :param header: the CSV header.
    :param alias: the dataset's API name (the object name).
    :param delimiter: the CSV delimiter.
    """
    return {"fileFormat": {"charsetName": "UTF-8", "fieldsDelimitedBy": delimiter, "fieldsEnclosedBy": '"',
                           "numberOfLinesToIgnore": 1},
            "objects": [{"connector": "AirflowCSV", "fullyQualifiedName": alias, "label": alias, "name": alias,
                         "fields": [{"fullyQualifiedName": f"{alias}.{name}", "name": name, "label": name,
                                     "type": "Text"} for name in header]}]}


def _segment(value: str) -> str:
    return quote(str(value), safe="")


class SalesforceAnalyticsHook(SalesforceBaseHook):
    """CRM Analytics REST API (``/services/data/vXX.X/wave``) and external data uploads.

    :param salesforce_conn_id: Airflow connection id of type ``salesforce_suite``.
    :param api_version: overrides the connection's ``api_version``.
    """

    hook_name = "Salesforce CRM Analytics"

    def wave_url(self, path: str = "") -> str:
        """``/services/data/vXX.X/wave/{path}``.

        :param path: the path under ``wave``.
        """
        return self.data_url("wave" + ("/" + path.lstrip("/") if path else ""))

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    # -- assets ---------------------------------------------------------------------------------------
    def get_resources(self) -> dict[str, str]:
        """The top-level Wave resources (name -> URL)."""
        return self._get(self.wave_url())

    def iter_assets(self, collection: str, *, folder_id: str | None = None, q: str | None = None,
                    sort: str | None = None, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Lazily yield a list resource's items, page by page (``nextPageUrl``).

        :param collection: ``datasets``, ``dashboards``, ``lenses``, ``folders``, ``dataflows``,
            ``recipes``, ``templates`` or ``annotations``.
        :param folder_id: only assets in this folder (app).
        :param q: search text (label or name).
        :param sort: ``Name``, ``LastModified``, ``CreatedDate`` or ``Mru``.
        :param page_size: items per request.
        """
        params = {k: v for k, v in {"folderId": folder_id, "q": q, "sort": sort, "pageSize": page_size}.items()
                  if v is not None}
        page = self._get(self.wave_url(collection), params)
        while True:
            yield from page.get(collection) or []
            next_url = page.get("nextPageUrl")
            if not next_url:
                return
            page = self._get(next_url)

    def get_asset(self, collection: str, asset_id: str) -> dict[str, Any]:
        """One asset.

        :param collection: see :meth:`iter_assets`.
        :param asset_id: its id.
        """
        return self._get(self.wave_url(f"{collection}/{_segment(asset_id)}"))

    def iter_datasets(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Lazily yield datasets; ``folder_id``, ``q``, ``sort``, ``page_size`` as :meth:`iter_assets`."""
        return self.iter_assets("datasets", **filters)

    def get_dataset(self, dataset_id: str) -> dict[str, Any]:
        """One dataset.

        :param dataset_id: the ``0Fb`` id (or API name).
        """
        return self.get_asset("datasets", dataset_id)

    def update_dataset(self, dataset_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH a dataset (``label``, ``description``, ``folder`` ...).

        :param dataset_id: the dataset.
        :param changes: the fields to change.
        """
        return self.request("PATCH", self.wave_url(f"datasets/{_segment(dataset_id)}"), json=dict(changes)).json()

    def list_dataset_versions(self, dataset_id: str) -> list[dict[str, Any]]:
        """The versions of a dataset.

        :param dataset_id: the dataset.
        """
        return self._get(self.wave_url(f"datasets/{_segment(dataset_id)}/versions")).get("versions") or []

    def get_dataset_version(self, dataset_id: str, version_id: str) -> dict[str, Any]:
        """One dataset version.

        :param dataset_id: the dataset.
        :param version_id: the ``0Fc`` version.
        """
        return self._get(self.wave_url(f"datasets/{_segment(dataset_id)}/versions/{_segment(version_id)}"))

    def iter_dashboards(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Lazily yield dashboards (filters as :meth:`iter_assets`)."""
        return self.iter_assets("dashboards", **filters)

    def get_dashboard(self, dashboard_id: str) -> dict[str, Any]:
        """One dashboard.

        :param dashboard_id: the ``0FK`` id.
        """
        return self.get_asset("dashboards", dashboard_id)

    def create_dashboard(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a dashboard (``label`` required; ``name``, ``folder``, ``state`` ...).

        :param body: the dashboard JSON.
        """
        return self.request("POST", self.wave_url("dashboards"), json=dict(body)).json()

    def update_dashboard(self, dashboard_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH a dashboard.

        :param dashboard_id: the dashboard.
        :param changes: the fields to change.
        """
        return self.request("PATCH", self.wave_url(f"dashboards/{_segment(dashboard_id)}"),
                            json=dict(changes)).json()

    def iter_folders(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Lazily yield folders (apps)."""
        return self.iter_assets("folders", **filters)

    def get_folder(self, folder_id: str) -> dict[str, Any]:
        """One folder.

        :param folder_id: the ``00l`` id.
        """
        return self.get_asset("folders", folder_id)

    def replace_folder(self, folder_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT (replace) a folder (``label`` required).

        :param folder_id: the folder.
        :param body: its new representation.
        """
        return self.request("PUT", self.wave_url(f"folders/{_segment(folder_id)}"), json=dict(body),
                            idempotent=True).json()

    def iter_lenses(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Lazily yield lenses."""
        return self.iter_assets("lenses", **filters)

    def get_lens(self, lens_id: str) -> dict[str, Any]:
        """One lens.

        :param lens_id: the lens id.
        """
        return self.get_asset("lenses", lens_id)

    def iter_annotations(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Lazily yield annotations."""
        return self.iter_assets("annotations", **filters)

    def iter_templates(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Lazily yield templates."""
        return self.iter_assets("templates", **filters)

    # -- SAQL -----------------------------------------------------------------------------------------
    def query(self, saql: str) -> dict[str, Any]:
        """Run a SAQL query: ``{"action", "responseId", "results": {"records", "metadata"}, "query"}``.

        :param saql: the query.
        :raises SalesforceApiError: Salesforce's error (HTTP 400) for a query it cannot run.
        """
        # A query reads only: safe to replay after a dropped connection.
        return self.request("POST", self.wave_url("query"), json={"query": saql}, idempotent=True).json()

    def query_records(self, saql: str) -> list[dict[str, Any]]:
        """The records of a SAQL query.

        :param saql: the query.
        """
        return self.query(saql).get("results", {}).get("records") or []

    # -- dataflows and recipes ------------------------------------------------------------------------
    def list_dataflows(self) -> list[dict[str, Any]]:
        """Every dataflow."""
        return list(self.iter_assets("dataflows"))

    def list_recipes(self) -> list[dict[str, Any]]:
        """Every recipe."""
        return list(self.iter_assets("recipes"))

    def start_dataflow(self, dataflow_id: str) -> dict[str, Any]:
        """Start a dataflow: the new dataflow job (``Queued``).

        :param dataflow_id: the ``02K`` dataflow.
        """
        return self.request("POST", self.wave_url("dataflowjobs"),
                            json={"dataflowId": dataflow_id, "command": "start"}).json()

    def start_recipe(self, recipe_id: str) -> dict[str, Any]:
        """Start a recipe: runs its target dataflow; the new dataflow job.

        :param recipe_id: the recipe.
        """
        target = self.get_asset("recipes", recipe_id).get("targetDataflowId")
        if not target:
            raise SalesforceAnalyticsError(f"Recipe {recipe_id} has no targetDataflowId: it was never saved to run")
        return self.start_dataflow(target)

    def stop_dataflow_job(self, job_id: str) -> dict[str, Any]:
        """Stop a dataflow job.

        :param job_id: the ``03C`` job.
        """
        return self.request("PATCH", self.wave_url(f"dataflowjobs/{_segment(job_id)}"),
                            json={"command": "stop"}).json()

    def iter_dataflow_jobs(self, *, dataflow_id: str | None = None, status: str | None = None
                           ) -> Iterator[dict[str, Any]]:
        """Lazily yield dataflow jobs, newest first.

        :param dataflow_id: only this dataflow's jobs.
        :param status: only jobs in this status.
        """
        params = {k: v for k, v in {"dataflowId": dataflow_id, "status": status}.items() if v}
        page = self._get(self.wave_url("dataflowjobs"), params)
        while True:
            yield from page.get("dataflowJobs") or []
            if not page.get("nextPageUrl"):
                return
            page = self._get(page["nextPageUrl"])

    def get_dataflow_job(self, job_id: str) -> dict[str, Any]:
        """One dataflow job.

        :param job_id: the job.
        """
        return self._get(self.wave_url(f"dataflowjobs/{_segment(job_id)}"))

    def dataflow_job_status(self, job_id: str) -> AnalyticsStatus:
        """The judged status of a dataflow job.

        :param job_id: the job.
        """
        return evaluate_dataflow_job(self.get_dataflow_job(job_id))

    async def a_get_dataflow_job(self, job_id: str) -> dict[str, Any]:
        """Async twin of :meth:`get_dataflow_job` (triggers).

        :param job_id: the job.
        """
        response = await self.async_session().request("GET", self.wave_url(f"dataflowjobs/{_segment(job_id)}"))
        return response.raise_for_status().json()

    # -- dataset uploads ------------------------------------------------------------------------------
    def upload_dataset(self, source: Source, alias: str, *, metadata: Mapping[str, Any] | None = None,
                       operation: UploadOperation = "Overwrite", label: str | None = None,
                       folder: str | None = None, part_bytes: int = DEFAULT_PART_BYTES, compress: bool = True,
                       process: bool = True) -> str:
        """Upload a CSV file into a dataset through ``InsightsExternalData``; the header's id.

        The file is read in ``part_bytes`` slices, each sent as one ``InsightsExternalDataPart``
        (gzip members when that saves at least 10 %: decided on the first slice, applied to all,
        so the parts concatenate into one gzip file as Salesforce expects).

        :param source: CSV file: local path, URI (``s3://``, ``file://``) or ``ObjectStoragePath``
            (``.csv.gz`` is read decompressed).
        :param alias: the dataset's API name (``EdgemartAlias``).
        :param metadata: the metadata JSON; default: every column a Text dimension (from the header).
        :param operation: ``Overwrite``, ``Append``, ``Upsert`` or ``Delete``.
        :param label: the dataset's label (``EdgemartLabel``).
        :param folder: the app (folder) id or name (``EdgemartContainer``).
        :param part_bytes: raw bytes per part (at most 10,000,000).
        :param compress: gzip the parts when it helps.
        :param process: set ``Action`` to ``Process`` after the last part.
        :raises SalesforceAnalyticsError: bad arguments or an empty file.
        """
        if operation not in ("Overwrite", "Append", "Upsert", "Delete"):
            raise SalesforceAnalyticsError(f"operation must be Overwrite, Append, Upsert or Delete, not {operation!r}")
        if not 1 <= part_bytes <= MAX_PART_BYTES:
            raise SalesforceAnalyticsError(f"part_bytes must be between 1 and {MAX_PART_BYTES}, not {part_bytes}")
        with _open_csv(source) as raw:
            first = raw.read(part_bytes)
            if not first.strip():
                raise SalesforceAnalyticsError(f"{source}: the file is empty")
            if metadata is None:
                header = next(csv.reader(io.StringIO(first.split(b"\n", 1)[0].decode("utf-8-sig"))))
                metadata = infer_metadata(header, alias)
            values = {"Format": "Csv", "EdgemartAlias": alias, "Operation": operation, "Action": "None",
                      "MetadataJson": base64.b64encode(json.dumps(metadata).encode()).decode()}
            if label:
                values["EdgemartLabel"] = label
            if folder:
                values["EdgemartContainer"] = folder
            header_id = self._create("InsightsExternalData", values)
            gzip_parts = compress and len(gzip.compress(first, 6)) <= GZIP_WORTH_RATIO * len(first)
            number, chunk = 0, first
            while chunk:
                number += 1
                data = gzip.compress(chunk, 6) if gzip_parts else chunk
                self._create("InsightsExternalDataPart", {"InsightsExternalDataId": header_id, "PartNumber": number,
                                                          "DataFile": base64.b64encode(data).decode()})
                chunk = raw.read(part_bytes)
        self.log.info("Uploaded %d part(s)%s for dataset %s (%s)", number, " (gzip)" if gzip_parts else "",
                      alias, header_id)
        if process:
            self.process_upload(header_id)
        return header_id

    def _create(self, sobject: str, values: Mapping[str, Any]) -> str:
        return self.request("POST", self.data_url(f"sobjects/{sobject}"), json=dict(values)).json()["id"]

    def process_upload(self, header_id: str) -> None:
        """Set ``Action`` to ``Process``: Salesforce queues the upload.

        :param header_id: the ``InsightsExternalData`` id.
        """
        self.request("PATCH", self.data_url(f"sobjects/InsightsExternalData/{_segment(header_id)}"),
                     json={"Action": "Process"}, idempotent=True)

    def upload_status(self, header_id: str) -> AnalyticsStatus:
        """The judged status of an upload.

        :param header_id: the ``InsightsExternalData`` id.
        """
        return evaluate_upload(self._get(self._upload_path(header_id)))

    async def a_upload_status(self, header_id: str) -> AnalyticsStatus:
        """Async twin of :meth:`upload_status` (triggers).

        :param header_id: the ``InsightsExternalData`` id.
        """
        response = await self.async_session().request("GET", self._upload_path(header_id))
        return evaluate_upload(response.raise_for_status().json())

    def _upload_path(self, header_id: str) -> str:
        return self.data_url(f"sobjects/InsightsExternalData/{_segment(header_id)}?fields=Id,Status,StatusMessage")

    def wait(self, kind: Literal["upload", "dataflow_job"], object_id: str, *, poll_interval: float = 5.0,
             timeout: float | None = None) -> AnalyticsStatus:
        """Poll an upload or a dataflow job until done; a failure raises at once with its message.

        :param kind: ``upload`` or ``dataflow_job``.
        :param object_id: the ``InsightsExternalData`` or dataflow job id.
        :param poll_interval: seconds between polls.
        :param timeout: seconds in all (None: no limit).
        :raises SalesforceAnalyticsError: it failed, or ``timeout`` passed.
        """
        check = self.upload_status if kind == "upload" else self.dataflow_job_status
        started = time.monotonic()
        while True:
            status = check(object_id)
            raise_if_failed(kind, status)
            if status.done:
                return status
            if timeout is not None and time.monotonic() - started + poll_interval > timeout:
                raise SalesforceAnalyticsError(f"{describe(kind, object_id)} still {status.status} after "
                                               f"{timeout:g}s")
            time.sleep(poll_interval)


def describe(kind: str, object_id: str) -> str:
    """``"Upload 06V..."`` or ``"Dataflow job 03C..."``.

    :param kind: ``upload`` or ``dataflow_job``.
    :param object_id: the id.
    """
    return f"{'Upload' if kind == 'upload' else 'Dataflow job'} {object_id}"


def raise_if_failed(kind: str, status: AnalyticsStatus) -> None:
    """Raise :class:`SalesforceAnalyticsError` with Salesforce's message when ``status`` failed.

    :param kind: ``upload`` or ``dataflow_job``.
    :param status: the judged status.
    """
    if status.failed:
        raise SalesforceAnalyticsError(f"{describe(kind, status.id)} ended {status.status}: "
                                       f"{status.message or '(no message from Salesforce)'}")


class _open_csv:
    """Open a CSV source for binary reading (``.gz`` decompressed on the fly)."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._stack: list[Any] = []

    def __enter__(self) -> Any:
        from airflow_provider_salesforce_suite.io.formats import to_path

        path = to_path(self.source)
        raw = path.open("rb")
        self._stack.append(raw)
        if str(path).endswith(".gz"):
            raw = gzip.GzipFile(fileobj=raw, mode="rb")
            self._stack.append(raw)
        return raw

    def __exit__(self, *exc: object) -> None:
        for handle in reversed(self._stack):
            handle.close()
