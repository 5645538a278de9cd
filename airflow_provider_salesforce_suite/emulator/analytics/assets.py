"""Wave assets (folders, datasets, versions, dashboards, lenses, dataflows, recipes, jobs) and
their JSON shapes as the Wave REST API returns them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


def now_iso() -> str:
    """Wave's timestamp format (``2024-05-01T12:00:00.000Z``)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{dt.datetime.now(dt.timezone.utc).microsecond // 1000:03d}Z"


@dataclass
class Asset:
    """What every Wave asset has.

    :param id: the asset id.
    :param name: the API name.
    :param label: the display label.
    :param kind: the ``type`` in JSON (``dataset``, ``dashboard`` ...).
    :param collection: the URL segment (``datasets``, ``dashboards`` ...).
    """

    id: str
    name: str
    label: str
    kind: str
    collection: str
    folder_id: str | None = None
    description: str = ""
    created_by: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=now_iso)
    modified: str = field(default_factory=now_iso)
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, base: str) -> str:
        """The asset's URL.

        :param base: ``/services/data/vXX.X/wave``.
        """
        return f"{base}/{self.collection}/{self.id}"

    def to_json(self, base: str, folders: dict[str, Asset]) -> dict[str, Any]:
        """The asset's JSON representation.

        :param base: ``/services/data/vXX.X/wave``.
        :param folders: folders by id (to describe the asset's folder).
        """
        body: dict[str, Any] = {
            "createdBy": self.created_by, "createdDate": self.created, "id": self.id, "label": self.label,
            "lastModifiedBy": self.created_by, "lastModifiedDate": self.modified, "name": self.name,
            "permissions": {"manage": True, "modify": True, "view": True}, "type": self.kind,
            "url": self.url(base),
        }
        if self.description:
            body["description"] = self.description
        folder = folders.get(self.folder_id or "")
        if folder is not None:
            body["folder"] = {"id": folder.id, "label": folder.label, "name": folder.name, "url": folder.url(base)}
        body.update(self.extra)
        return body


@dataclass
class Version:
    """A dataset version: its rows live in the row store's ``ds_<id>`` table.

    :param id: the ``0Fc`` id.
    :param dataset_id: the dataset.
    :param columns: column -> ``string``/``numeric``.
    :param fields: the metadata JSON fields the version was built with.
    :param total_rows: row count.
    """

    id: str
    dataset_id: str
    columns: dict[str, str]
    fields: list[dict[str, Any]]
    total_rows: int = 0
    unique: str | None = None
    created_by: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=now_iso)

    def to_json(self, base: str) -> dict[str, Any]:
        """The version's JSON representation.

        :param base: ``/services/data/vXX.X/wave``.
        """
        dataset_url = f"{base}/datasets/{self.dataset_id}"
        dimensions = [{"field": c, "label": c} for c, t in self.columns.items() if t == "string"]
        measures = [{"field": c, "label": c} for c, t in self.columns.items() if t == "numeric"]
        return {"createdBy": self.created_by, "createdDate": self.created, "dataset": {"id": self.dataset_id,
                "url": dataset_url}, "id": self.id, "lastModifiedBy": self.created_by,
                "lastModifiedDate": self.created, "totalRowCount": self.total_rows, "type": "datasetVersion",
                "url": f"{dataset_url}/versions/{self.id}",
                "xmdMain": {"dimensions": dimensions, "measures": measures, "dates": []}}


#: DataflowJob states (Wave): Queued -> Running -> Success | Warning | Failure.
JOB_QUEUED, JOB_RUNNING, JOB_SUCCESS, JOB_FAILURE = "Queued", "Running", "Success", "Failure"


@dataclass
class DataflowJob:
    """A run of a dataflow (or a recipe's target dataflow).

    :param id: the ``03C`` id.
    :param dataflow_id: the dataflow.
    :param label: the dataflow's label.
    """

    id: str
    dataflow_id: str
    label: str
    job_type: str = "user"
    status: str = JOB_QUEUED
    message: str | None = None
    start: str = field(default_factory=now_iso)
    executed: str | None = None
    duration: int = 0
    progress: float = 0.0
    stop_requested: bool = False

    def to_json(self, base: str) -> dict[str, Any]:
        """The job's JSON representation.

        :param base: ``/services/data/vXX.X/wave``.
        """
        url = f"{base}/dataflowjobs/{self.id}"
        body = {"id": self.id, "label": self.label, "type": "dataflowjob", "jobType": self.job_type,
                "status": self.status, "startDate": self.start, "duration": self.duration,
                "progress": self.progress, "retryCount": 0, "waitTime": 0, "url": url, "nodesUrl": f"{url}/nodes",
                "dataflow": {"id": self.dataflow_id, "url": f"{base}/dataflows/{self.dataflow_id}"}}
        if self.executed:
            body["executedDate"] = self.executed
        if self.message:
            body["message"] = self.message
        return body
