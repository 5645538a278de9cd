"""The REST hook's "query, search & org" section (mixed into :class:`SalesforceRestHook`).

One short method per resource; helpers for the wire formats (replication datetimes, blob
destinations) live at module level.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence
from urllib.parse import quote

if TYPE_CHECKING:
    import requests

    from airflow.sdk import ObjectStoragePath

#: Bytes per chunk when streaming a blob to its destination.
BLOB_CHUNK_BYTES = 64 * 1024
#: Rows per list view results call (Salesforce's maximum).
LIST_VIEW_PAGE = 2000


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def format_replication_datetime(value: dt.datetime | dt.date | str) -> str:
    """A ``start``/``end`` for ``updated``/``deleted``: ISO 8601 UTC to the second (naive means UTC).

    :param value: a datetime, a date (midnight UTC) or an already formatted string.
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def write_stream(response: requests.Response, destination: str | os.PathLike | ObjectStoragePath) -> int:
    """Copy a streamed response body to a local path or an ``ObjectStoragePath``, chunk by chunk.

    :param response: a response opened with ``stream=True``.
    :param destination: where to write (overwritten).
    :returns: bytes written.
    """
    written = 0
    # ObjectStoragePath and pathlib paths open themselves; plain strings are local paths.
    opener = destination.open if hasattr(destination, "open") else None
    with response, (opener("wb") if opener else open(destination, "wb")) as out:  # noqa: SIM115
        for chunk in response.iter_content(chunk_size=BLOB_CHUNK_BYTES):
            out.write(chunk)
            written += len(chunk)
    return written


class RestQueryOrgMixin:
    """Queries, searches and org resources of the REST API; needs ``request`` and ``data_url``."""

    if TYPE_CHECKING:
        def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response: ...
        def data_url(self, path: str = "") -> str: ...

    def _get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", self.data_url(path), params=params).json()

    # -- query and search -------------------------------------------------------------------------
    def query_pages(
        self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield a SOQL query's records one page (one API call) at a time, following ``nextRecordsUrl``.

        :param soql: the SOQL query.
        :param include_deleted: use ``queryAll`` (deleted and archived records too).
        :param batch_size: page size hint (``Sforce-Query-Options: batchSize=N``, 200-2000).
        """
        headers = {"Sforce-Query-Options": f"batchSize={int(batch_size)}"} if batch_size else None
        resource = "queryAll" if include_deleted else "query"
        page = self.request("GET", self.data_url(resource), params={"q": soql}, headers=headers).json()
        while True:
            yield page.get("records", [])
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.request("GET", next_url, headers=headers).json()

    def explain(self, soql_or_report_or_listview: str) -> dict[str, Any]:
        """The query plans for a SOQL query, report id or list view id (``query?explain=``).

        :param soql_or_report_or_listview: what to explain.
        """
        return self._get_json("query", {"explain": soql_or_report_or_listview})

    def search(self, sosl: str) -> list[dict[str, Any]]:
        """Run a SOSL search; its ``searchRecords``.

        :param sosl: e.g. ``FIND {Acme} RETURNING Account(Id, Name)``.
        """
        body = self._get_json("search", {"q": sosl})
        return body if isinstance(body, list) else body.get("searchRecords", [])  # lists before API 35

    def parameterized_search(
        self,
        q: str,
        *,
        sobjects: Sequence[str | Mapping[str, Any]] | None = None,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
        default_limit: int | None = None,
        in_fields: str | None = None,
    ) -> list[dict[str, Any]]:
        """A search without SOSL syntax (``POST parameterizedSearch``); its ``searchRecords``.

        :param q: the search text (no escaping needed).
        :param sobjects: object names, or ``{"name", "fields", "where", "limit"}`` mappings.
        :param fields: fields returned for objects that name none.
        :param limit: the overall result limit (``overallLimit``).
        :param default_limit: per-object limit where none is given (``defaultLimit``).
        :param in_fields: the scope: ``ALL``, ``NAME``, ``EMAIL``, ``PHONE`` or ``SIDEBAR``.
        """
        body: dict[str, Any] = {"q": q}
        if sobjects:
            body["sobjects"] = [{"name": s} if isinstance(s, str) else dict(s) for s in sobjects]
        if fields:
            body["fields"] = list(fields)
        for key, value in (("overallLimit", limit), ("defaultLimit", default_limit), ("in", in_fields)):
            if value is not None:
                body[key] = value
        reply = self.request("POST", self.data_url("parameterizedSearch"), json=body, idempotent=True).json()
        return reply.get("searchRecords", [])

    # -- org -----------------------------------------------------------------------------------------
    def sobject_info(self, sobject: str) -> dict[str, Any]:
        """Basic info and recent items of one sObject (``GET sobjects/{sobject}``)."""
        return self._get_json(f"sobjects/{_segment(sobject)}")

    def resources(self) -> dict[str, str]:
        """The resources of this API version (name -> URL)."""
        return self._get_json("")

    def record_counts(self, sobjects: Sequence[str] | None = None) -> dict[str, int]:
        """Record counts per object (``limits/recordCount``).

        :param sobjects: object names (all objects by default).
        """
        params = {"sObjects": ",".join(sobjects)} if sobjects else None
        return {item["name"]: item["count"] for item in self._get_json("limits/recordCount", params)["sObjects"]}

    def get_updated(self, sobject: str, start: dt.datetime | str, end: dt.datetime | str) -> dict[str, Any]:
        """Ids of records created or updated in ``[start, end)``: ``{"ids", "latestDateCovered"}``.

        :param sobject: the object.
        :param start: window start (naive datetimes are UTC), within the last 30 days.
        :param end: window end, at most 30 days after ``start``.
        """
        return self._get_json(f"sobjects/{_segment(sobject)}/updated", self._window(start, end))

    def get_deleted(self, sobject: str, start: dt.datetime | str, end: dt.datetime | str) -> dict[str, Any]:
        """Records deleted in ``[start, end)``: ``{"deletedRecords", "earliestDateAvailable", "latestDateCovered"}``.

        :param sobject: the object.
        :param start: window start (naive datetimes are UTC), within the last 30 days.
        :param end: window end.
        """
        return self._get_json(f"sobjects/{_segment(sobject)}/deleted", self._window(start, end))

    @staticmethod
    def _window(start: dt.datetime | str, end: dt.datetime | str) -> dict[str, str]:
        return {"start": format_replication_datetime(start), "end": format_replication_datetime(end)}

    def recently_viewed(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Recently viewed records (``recent``), newest first.

        :param limit: at most this many (Salesforce: 1-200).
        """
        return self._get_json("recent", {"limit": limit} if limit is not None else None)

    # -- list views ----------------------------------------------------------------------------------
    def list_views(self, sobject: str) -> list[dict[str, Any]]:
        """An object's list views (``id``, ``developerName``, ``label``, URLs), all pages.

        :param sobject: the object.
        """
        body = self._get_json(f"sobjects/{_segment(sobject)}/listviews")
        views = list(body.get("listviews", []))
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = self.request("GET", body["nextRecordsUrl"]).json()
            views += body.get("listviews", [])
        return views

    def describe_list_view(self, sobject: str, list_view_id: str) -> dict[str, Any]:
        """A list view's columns, SOQL ``query`` and ordering."""
        return self._get_json(f"sobjects/{_segment(sobject)}/listviews/{_segment(list_view_id)}/describe")

    def list_view_results(self, sobject: str, list_view_id: str, *, page_size: int = LIST_VIEW_PAGE) -> Iterator[dict[str, Any]]:
        """Yield a list view's rows as ``{fieldNameOrPath: value}``, fetching ``page_size`` rows per call.

        :param sobject: the object.
        :param list_view_id: the list view's id.
        :param page_size: rows per call (1-2000).
        """
        path = f"sobjects/{_segment(sobject)}/listviews/{_segment(list_view_id)}/results"
        offset = 0
        while True:
            body = self._get_json(path, {"limit": page_size, "offset": offset})
            for row in body.get("records", []):
                yield {column["fieldNameOrPath"]: column["value"] for column in row["columns"]}
            offset += len(body.get("records", []))
            if body.get("done", True) or not body.get("records"):
                return

    # -- Apex REST, users, actions, processes --------------------------------------------------------
    def apex_rest(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Call a custom Apex REST endpoint (``/services/apexrest/{path}``); the parsed JSON body or None.

        :param method: HTTP method.
        :param path: the endpoint's path, e.g. ``Accounts/001...``.
        :param json: JSON body.
        :param params: query parameters.
        """
        response = self.request(method, "/services/apexrest/" + path.lstrip("/"), json=json, params=params)
        return response.json() if response.content else None

    def _password_path(self, user_id: str) -> str:
        return self.data_url(f"sobjects/User/{_segment(user_id)}/password")

    def set_password(self, user_id: str, password: str) -> None:
        """Set a user's password (never logged: it travels only in the request body).

        :param user_id: the User id.
        :param password: the new password.
        """
        self.request("POST", self._password_path(user_id), json={"NewPassword": password}, idempotent=True)

    def reset_password(self, user_id: str) -> str:
        """Reset a user's password; returns the generated one (the user must change it at next login)."""
        return self.request("DELETE", self._password_path(user_id)).json()["NewPassword"]

    def password_expired(self, user_id: str) -> bool:
        """Whether a user's password has expired."""
        return bool(self.request("GET", self._password_path(user_id)).json()["isExpired"])

    def quick_actions(self, sobject: str | None = None) -> list[dict[str, Any]]:
        """Global quick actions, or an object's.

        :param sobject: the object (global actions when omitted).
        """
        return self._get_json(f"sobjects/{_segment(sobject)}/quickActions" if sobject else "quickActions")

    def invoke_quick_action(
        self, action: str, record: Mapping[str, Any], *, sobject: str | None = None, context_id: str | None = None
    ) -> dict[str, Any]:
        """Invoke a quick action: ``{"id", "created", "success", "contextId", ...}``.

        :param action: the action name (``NewTask``, ``Account.NewContact``).
        :param record: field values of the record it creates.
        :param sobject: the object an object-specific action belongs to.
        :param context_id: the record the action runs on (object actions).
        """
        base = f"sobjects/{_segment(sobject)}/quickActions" if sobject else "quickActions"
        body: dict[str, Any] = {"record": dict(record)}
        if context_id:
            body["contextId"] = context_id
        return self.request("POST", self.data_url(f"{base}/{_segment(action)}"), json=body).json()

    def approvals(self) -> dict[str, list[dict[str, Any]]]:
        """Approval processes by object (``process/approvals``)."""
        return self._get_json("process/approvals")["approvals"]

    def submit_approval(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Submit, approve or reject: each request has ``actionType``, ``contextId``, ``comments`` ...

        :param requests: the approval requests.
        :returns: one result per request (``instanceId``, ``instanceStatus``, ``actorIds`` ...).
        """
        body = {"requests": [dict(r) for r in requests]}
        return self.request("POST", self.data_url("process/approvals"), json=body).json()

    def process_rules(self, sobject: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Workflow rules by object (all objects, or one).

        :param sobject: the object.
        """
        path = f"process/rules/{_segment(sobject)}" if sobject else "process/rules"
        return self._get_json(path)["rules"]

    def trigger_process_rules(self, context_ids: Sequence[str]) -> dict[str, Any]:
        """Evaluate workflow rules for records: ``{"errors": None, "success": True}``.

        :param context_ids: the record ids.
        """
        return self.request("POST", self.data_url("process/rules"), json={"contextIds": list(context_ids)}).json()

    # -- blobs ---------------------------------------------------------------------------------------
    def download_blob(
        self, sobject: str, record_id: str, field: str, destination: str | os.PathLike | ObjectStoragePath
    ) -> int:
        """Stream a blob field (``Attachment.Body``, ``ContentVersion.VersionData`` ...) to a file.

        The body is written in chunks as it arrives, never held whole in memory.

        :param sobject: the object.
        :param record_id: the record id.
        :param field: the blob field.
        :param destination: a local path or an ``airflow.sdk.ObjectStoragePath``.
        :returns: bytes written.
        """
        path = self.data_url(f"sobjects/{_segment(sobject)}/{_segment(record_id)}/{_segment(field)}")
        return write_stream(self.request("GET", path, stream=True), destination)
