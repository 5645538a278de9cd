"""The analytics service: every Wave asset of one emulator, upload processing and dataflow runs.

Uploads and dataflow jobs move through their states in the background on the server loop (the
blocking work in a small thread pool), like the Bulk worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import ids
from ..errors import SalesforceApiError
from ..hold import JobHold
from ..store import ChangeEvent
from . import uploads
from .assets import JOB_FAILURE, JOB_QUEUED, JOB_RUNNING, JOB_SUCCESS, Asset, DataflowJob, Version, now_iso
from .rows import CHUNK_ROWS, RowStore
from .saql import compile_saql, saql_error

if TYPE_CHECKING:
    from ..state import EmulatorState

log = logging.getLogger(__name__)

#: The API version used for the emulator's own store reads.
_API = "62.0"
#: The default folder (app) uploads land in without ``EdgemartContainer``.
SHARED_APP = "SharedApp"
#: The seeded dataflows: each rebuilds a dataset from a SOQL query over the store.
DEFAULT_DATAFLOWS: list[dict[str, Any]] = [
    {"name": "Rebuild_Accounts", "label": "Rebuild Accounts", "dataset": "Accounts",
     "soql": "SELECT Id, Name, Industry, AnnualRevenue, NumberOfEmployees FROM Account"},
    {"name": "Rebuild_Opportunities", "label": "Rebuild Opportunities", "dataset": "Opportunities",
     "soql": "SELECT Id, Name, StageName, Amount FROM Opportunity"},
]
#: The seeded recipe (its run is a job of its target dataflow, as on Salesforce).
DEFAULT_RECIPES: list[dict[str, Any]] = [
    {"name": "Accounts_Recipe", "label": "Accounts Recipe", "dataset": "Accounts_Prepared",
     "soql": "SELECT Id, Name, Industry FROM Account"},
]


@dataclass
class AnalyticsSettings:
    """Knobs tests turn through ``POST /__emulator__/analytics``.

    :param min_queued_seconds: an upload or dataflow job stays Queued at least this long.
    :param min_running_seconds: ... and InProgress/Running at least this long.
    :param fail_next_dataflow: messages; each fails the next dataflow job with it.
    """

    min_queued_seconds: float = 0.0
    min_running_seconds: float = 0.0
    fail_next_dataflow: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The settings as the admin API shows them."""
        return {"min_queued_seconds": self.min_queued_seconds, "min_running_seconds": self.min_running_seconds,
                "fail_next_dataflow": list(self.fail_next_dataflow)}


class AnalyticsService:
    """The Wave assets of one emulator and the workers behind uploads and dataflows.

    :param state: the emulator state (store, config).
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store = state.store
        self.rows = RowStore()
        self._ids = ids.IdGenerator()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analytics-worker")
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._generation = 0
        #: the ``hold_jobs`` knob: uploads and dataflow jobs stay InProgress/Running while it is shut
        self.job_hold = JobHold()
        self.store.add_listener(self._on_change, wants=lambda sobject: sobject == "InsightsExternalData")
        self._clear()

    # -- registry ---------------------------------------------------------------------------------
    def _clear(self) -> None:
        self.settings = AnalyticsSettings()
        self.assets: dict[str, dict[str, Asset]] = {c: {} for c in (
            "folders", "datasets", "dashboards", "lenses", "dataflows", "recipes", "templates", "annotations")}
        self.versions: dict[str, Version] = {}
        self.jobs: dict[str, DataflowJob] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self._seed()

    def _seed(self) -> None:
        self.add("folders", "00l", SHARED_APP, "Shared App")
        self.add("templates", "0Nk", "Sales_Analytics", "Sales Analytics",
                 extra={"templateType": "app", "releaseInfo": {"templateVersion": "1.0"}})
        for spec in DEFAULT_DATAFLOWS:
            self.add_dataflow(spec)
        for spec in DEFAULT_RECIPES:
            target = self.add_dataflow({**spec, "name": spec["name"] + "_df"}, listed=False)
            self.add("recipes", "05v", spec["name"], spec["label"],
                     extra={"targetDataflowId": target.id, "format": "R3"})

    def new_id(self, prefix: str) -> str:
        """A fresh 18-char id.

        :param prefix: the key prefix.
        """
        return self._ids.new_id(prefix)

    def add(self, collection: str, prefix: str, name: str, label: str, **kwargs: Any) -> Asset:
        """Register an asset.

        :param collection: ``datasets``, ``dashboards`` ...
        :param prefix: its id prefix.
        :param name: API name.
        :param label: label.
        """
        kind = {"folders": "folder", "datasets": "dataset", "dashboards": "dashboard", "lenses": "lens",
                "dataflows": "dataflow", "recipes": "recipe", "templates": "template",
                "annotations": "annotation"}[collection]
        asset = Asset(self.new_id(prefix), name, label, kind, collection, created_by=self._user(), **kwargs)
        self.assets[collection][asset.id] = asset
        return asset

    def add_dataflow(self, spec: dict[str, Any], *, listed: bool = True) -> Asset:
        """Register a dataflow that rebuilds ``spec["dataset"]`` from ``spec["soql"]``.

        :param spec: ``{"name", "label", "dataset", "soql"}``.
        :param listed: whether ``/wave/dataflows`` lists it (a recipe's target dataflow is not).
        """
        asset = Asset(self.new_id("02K"), spec["name"], spec.get("label", spec["name"]), "dataflow", "dataflows",
                      created_by=self._user())
        if listed:
            self.assets["dataflows"][asset.id] = asset
        self.definitions[asset.id] = {**spec, "label": asset.label}
        return asset

    def get(self, collection: str, asset_id: str) -> Asset:
        """An asset by id (datasets also by name), or Wave's 404.

        :param collection: the collection.
        :param asset_id: id or (datasets) API name.
        :raises SalesforceApiError: 404 NOT_FOUND.
        """
        assets = self.assets[collection]
        asset = assets.get(ids.normalize(asset_id) or asset_id) or next(
            (a for a in assets.values() if a.name == asset_id), None)
        if asset is None:
            raise SalesforceApiError("NOT_FOUND", f"The requested resource does not exist: no {collection[:-1]} "
                                     f"with id or name '{asset_id}'", status=404)
        return asset

    def dataset_by_name(self, name: str) -> Asset | None:
        """A dataset by API name.

        :param name: the name.
        """
        return next((a for a in self.assets["datasets"].values() if a.name == name), None)

    def folder_id(self, folder: str | None) -> str:
        """The id of a folder given by id or name (default: the Shared App), or 404.

        :param folder: id or name.
        """
        return self.get("folders", folder or SHARED_APP).id

    def _user(self) -> dict[str, Any]:
        user = self.store.find_user(self.state.config.users[0].username) if self.state.config.users else None
        if not user:
            return {}
        return {"id": user["Id"], "name": " ".join(filter(None, [user.get("FirstName"), user.get("LastName")]))}

    def reset(self) -> None:
        """Forget every asset and job (emulator reset); running work finishes into the void."""
        self._generation += 1
        for job in self.jobs.values():
            job.stop_requested = True
        self.rows.drop_all()
        self._clear()
        self.job_hold.set(False)  # held work finishes into the void (generation check)

    def close(self) -> None:
        """Stop the worker threads and close the row store."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- datasets ---------------------------------------------------------------------------------
    def new_version(self, dataset_name: str, label: str | None, folder: str | None, columns: dict[str, str],
                    fields: list[dict[str, Any]], unique: str | None = None, *,
                    copy_previous: bool = False) -> tuple[Asset, Version]:
        """Create a dataset version (and the dataset when new); not current until :meth:`publish`.

        :param dataset_name: the dataset's API name (``EdgemartAlias``).
        :param label: its label for a new dataset.
        :param folder: folder id or name for a new dataset.
        :param columns: column -> ``string``/``numeric``.
        :param fields: metadata fields.
        :param unique: the ``isUniqueId`` column.
        :param copy_previous: start with the current version's rows (Append/Upsert/Delete).
        """
        dataset = self.dataset_by_name(dataset_name)
        if dataset is None:
            dataset = self.add("datasets", "0Fb", dataset_name, label or dataset_name,
                               folder_id=self.folder_id(folder), extra={"datasetType": "Default"})
        previous = self.versions.get(dataset.extra.get("currentVersionId", ""))
        if copy_previous and previous is not None and previous.columns != columns:
            raise uploads.UploadFailed(f"The metadata does not match dataset '{dataset_name}': its fields are "
                                       f"{list(previous.columns)}")
        version = Version(self.new_id("0Fc"), dataset.id, columns, fields, unique=unique, created_by=self._user())
        self.rows.create(version.id, columns, unique, previous.id if copy_previous and previous else None)
        self.versions[version.id] = version
        return dataset, version

    def publish(self, dataset: Asset, version: Version) -> None:
        """Make ``version`` the dataset's current version.

        :param dataset: the dataset.
        :param version: the version.
        """
        version.total_rows = self.rows.count(version.id)
        dataset.extra["currentVersionId"] = version.id
        dataset.modified = now_iso()

    # -- SAQL -------------------------------------------------------------------------------------
    def query(self, saql: str, max_rows: int = 10_000) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Run SAQL over the current dataset versions.

        :param saql: the query.
        :param max_rows: cap on returned rows.
        :raises SalesforceApiError: 400 errorCode 119 for a query that cannot run.
        """
        compiled = compile_saql(saql, self._resolve)
        return self.rows.run(compiled, max_rows), compiled.columns

    def _resolve(self, target: str) -> tuple[str, dict[str, str]]:
        dataset_ref, _, version_ref = target.partition("/")
        dataset = self.assets["datasets"].get(ids.normalize(dataset_ref) or "") or self.dataset_by_name(dataset_ref)
        version = None
        if dataset is not None:
            version = self.versions.get(ids.normalize(version_ref) or "" if version_ref else
                                        dataset.extra.get("currentVersionId", ""))
        if version is None or version.dataset_id != (dataset.id if dataset else None):
            raise saql_error(f"Dataset '{target}' not found, or it has no such version")
        return self.rows.table(version.id), version.columns

    # -- background -------------------------------------------------------------------------------
    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the server loop (store listeners may run on worker threads).

        :param loop: the server's event loop.
        """
        self._loop = loop

    def _schedule(self, make_coro: Any) -> None:
        loop = self._loop
        if loop is None:
            return

        def start() -> None:
            task = loop.create_task(make_coro())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        loop.call_soon_threadsafe(start)

    async def _blocking(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @staticmethod
    async def _hold(started: float, seconds: float) -> None:
        left = seconds - (time.monotonic() - started)
        if left > 0:
            await asyncio.sleep(left)

    # -- uploads ----------------------------------------------------------------------------------
    def _on_change(self, event: ChangeEvent) -> None:
        if event.sobject != "InsightsExternalData" or event.operation not in ("create", "update"):
            return
        if "Action" in event.changed_fields and event.record.get("Action") == "Process" \
                and event.record.get("Status") in (None, "New"):
            record_id = event.record_id
            self._schedule(lambda: self._run_upload(record_id))

    def _set_status(self, record_id: str, status: str, message: str | None = None) -> None:
        values: dict[str, Any] = {"Status": status}
        if message is not None:
            values["StatusMessage"] = message[:32000]
        if status == "Queued":
            values["SubmittedDate"] = now_iso().replace("Z", "+0000")
        self.store.update("InsightsExternalData", record_id, values)

    async def _run_upload(self, record_id: str) -> None:
        generation = self._generation
        started = time.monotonic()
        self._set_status(record_id, "Queued")
        await self._hold(started, self.settings.min_queued_seconds)
        if generation != self._generation:
            return
        self._set_status(record_id, "InProgress")
        started = time.monotonic()
        try:
            status, message = await self._blocking(self._process_upload, record_id)
        except uploads.UploadFailed as exc:
            status, message = "Failed", str(exc)
        except SalesforceApiError as exc:
            status, message = "Failed", f"{exc.error_code}: {exc.message}"
        except Exception:  # an emulator bug: fail the upload, keep serving
            log.exception("analytics upload %s crashed", record_id)
            status, message = "Failed", "An unexpected error occurred"
        await self._hold(started, self.settings.min_running_seconds)
        await self.job_hold.wait()
        if generation == self._generation:
            self._set_status(record_id, status, message)

    def _process_upload(self, record_id: str) -> tuple[str, str | None]:
        header_rec = uploads.header_record(self.store, record_id, _API)
        operation = header_rec.get("Operation") or "Overwrite"
        with uploads.spool_parts(self.store, record_id) as spool:
            header, reader, text = uploads.read_header(spool, uploads.metadata_delimiter(header_rec["metadata"]))
            columns, fields, unique, _ = uploads.parse_metadata(header_rec["metadata"], header)
            if operation in ("Upsert", "Delete") and unique is None:
                raise uploads.UploadFailed(f"Operation {operation} needs a field with isUniqueId true in the metadata")
            dataset, version = self.new_version(header_rec["EdgemartAlias"], header_rec.get("EdgemartLabel"),
                                                header_rec.get("EdgemartContainer"), columns, fields, unique,
                                                copy_previous=operation != "Overwrite")
            warnings: list[str] = []
            rows = uploads.typed_rows(reader, columns, warnings)
            names = list(columns)
            key_index = names.index(unique) if unique else 0
            while chunk := [row for _, row in zip(range(CHUNK_ROWS), rows)]:
                if operation == "Delete":
                    self.rows.delete_keys(version.id, unique or "", (r[key_index] for r in chunk))
                else:
                    self.rows.insert(version.id, names, chunk, replace=operation == "Upsert")
            text.detach()
        self.publish(dataset, version)
        if warnings:
            shown = "; ".join(warnings[:10])
            return "CompletedWithWarnings", f"{len(warnings)} row(s) skipped: {shown}"
        return "Completed", None

    # -- dataflows --------------------------------------------------------------------------------
    def start_dataflow(self, dataflow_id: str) -> DataflowJob:
        """Queue a run of a dataflow (or a recipe's target dataflow).

        :param dataflow_id: the ``02K`` id.
        :raises SalesforceApiError: 404 for an unknown dataflow.
        """
        definition = self.definitions.get(ids.normalize(dataflow_id) or dataflow_id)
        if definition is None:
            raise SalesforceApiError("NOT_FOUND", f"The requested resource does not exist: no dataflow with id "
                                     f"'{dataflow_id}'", status=404)
        job = DataflowJob(self.new_id("03C"), ids.normalize(dataflow_id) or dataflow_id, definition["label"])
        self.jobs[job.id] = job
        self._schedule(lambda: self._run_dataflow(job, definition))
        return job

    async def _run_dataflow(self, job: DataflowJob, definition: dict[str, Any]) -> None:
        generation = self._generation
        started = time.monotonic()
        await self._hold(started, self.settings.min_queued_seconds)
        if job.stop_requested or generation != self._generation:
            return
        job.status, job.executed = JOB_RUNNING, now_iso()
        job.progress = 0.5
        running = time.monotonic()
        message = self.settings.fail_next_dataflow.pop(0) if self.settings.fail_next_dataflow else None
        if message is None:
            try:
                await self._blocking(self._rebuild, definition)
            except SalesforceApiError as exc:
                message = f"{exc.error_code}: {exc.message}"
            except Exception:
                log.exception("dataflow job %s crashed", job.id)
                message = "An unexpected error occurred"
        await self._hold(running, self.settings.min_running_seconds)
        await self.job_hold.wait()
        if job.stop_requested or generation != self._generation:
            return
        job.duration = int(time.monotonic() - started)
        job.progress = 1.0
        job.status, job.message = (JOB_FAILURE, message) if message else (JOB_SUCCESS, None)

    def _rebuild(self, definition: dict[str, Any]) -> None:
        names, rows = self.store.bulk_query(definition["soql"])
        columns = {n: "string" for n in names}
        for index, name in enumerate(names):
            sample = next((r[index] for r in rows if r[index] is not None), None)
            if isinstance(sample, (int, float)) and not isinstance(sample, bool):
                columns[name] = "numeric"
        fields = [{"name": n, "label": n, "type": "Numeric" if t == "numeric" else "Text"} for n, t in columns.items()]
        dataset, version = self.new_version(definition["dataset"], definition["dataset"], None, columns, fields)
        for start in range(0, len(rows), CHUNK_ROWS):
            self.rows.insert(version.id, names, [[_cell(v) for v in r] for r in rows[start:start + CHUNK_ROWS]])
        self.publish(dataset, version)

    def stop_job(self, job: DataflowJob) -> None:
        """Stop a queued or running job (it ends ``Failure`` with a message saying so).

        :param job: the job.
        """
        if job.status in (JOB_QUEUED, JOB_RUNNING):
            job.stop_requested = True
            job.status, job.message = JOB_FAILURE, "The job was stopped by the user"


def _cell(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, float, str)) else str(value)


def service_of(request: Any) -> AnalyticsService:
    """The analytics service of the application serving ``request``.

    :param request: an aiohttp request.
    """
    return request.app[ANALYTICS_KEY]


from aiohttp import web  # noqa: E402  (the key needs the class above)

ANALYTICS_KEY: web.AppKey[AnalyticsService] = web.AppKey("analytics_service", AnalyticsService)
