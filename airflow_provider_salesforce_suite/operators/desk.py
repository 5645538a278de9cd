"""Desk API v2 operators: create a case, reply to a case, any Desk call, and a collection (list or
search) to a file in object storage.

Salesforce retired the hosted Desk.com service in March 2020; these operators serve Desk-compatible
API v2 sites (archives, the emulator). See ``docs/desk.md``.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from airflow.sdk import BaseOperator

from airflow_provider_salesforce_suite.hooks.desk import COLLECTIONS, MAX_PER_PAGE, DeskHook

if TYPE_CHECKING:
    from airflow.sdk import Context

_SEARCHABLE = tuple(name for name, caps in COLLECTIONS.items() if "s" in caps)


def flat_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A HAL entry as a file row: its fields, plus ``<link>_id`` for each linked entry
    (``customer_id``); ``_links`` and ``_embedded`` are dropped.

    :param entry: the entry.
    """
    row = {k: v for k, v in entry.items() if k not in ("_links", "_embedded")}
    for name, target in (entry.get("_links") or {}).items():
        if name == "self" or not isinstance(target, dict):
            continue
        tail = str(target.get("href", "")).rstrip("/").rpartition("/")[2]
        if tail.isdigit():
            row[f"{name}_id"] = int(tail)
    return row


class _DeskOperator(BaseOperator):
    """The connection and hook shared by the Desk operators.

    :param desk_conn_id: Airflow connection id (type ``salesforce_desk``).
    """

    def __init__(self, *, desk_conn_id: str = DeskHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.desk_conn_id = desk_conn_id

    @cached_property
    def hook(self) -> DeskHook:
        """The Desk hook on ``desk_conn_id``."""
        return DeskHook(desk_conn_id=self.desk_conn_id)


class SalesforceDeskCreateCaseOperator(_DeskOperator):
    """Create a Desk case; the XCom value is the new case (HAL entry).

    :param subject: the case's subject (templated).
    :param message: the first message, e.g. ``{"direction": "in", "body": ..., "from": ...}`` (templated).
    :param customer_id: link the case to this customer (templated).
    :param fields: more case fields: ``type``, ``status``, ``priority``, ``labels``, ``description`` (templated).
    """

    template_fields: Sequence[str] = ("subject", "message", "customer_id", "fields", "desk_conn_id")

    def __init__(self, *, subject: str, message: Mapping[str, Any] | None = None, customer_id: Any = None,
                 fields: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subject = subject
        self.message = message
        self.customer_id = customer_id
        self.fields = fields

    def execute(self, context: Context) -> dict[str, Any]:
        case = self.hook.create_case(self.subject, message=self.message, customer_id=self.customer_id or None,
                                     **dict(self.fields or {}))
        self.log.info("Created Desk case %s", case.get("id"))
        return case


class SalesforceDeskCaseReplyOperator(_DeskOperator):
    """Reply to a Desk case; the XCom value is the reply (HAL entry).

    :param case_id: the case (templated).
    :param body: the reply's text (templated).
    :param fields: more reply fields: ``direction``, ``status``, ``to``, ``subject`` (templated).
    """

    template_fields: Sequence[str] = ("case_id", "body", "fields", "desk_conn_id")

    def __init__(self, *, case_id: Any, body: str, fields: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case_id = case_id
        self.body = body
        self.fields = fields

    def execute(self, context: Context) -> dict[str, Any]:
        reply = self.hook.reply_to_case(self.case_id, self.body, **dict(self.fields or {}))
        self.log.info("Replied to Desk case %s (reply %s)", self.case_id, reply.get("id"))
        return reply


class SalesforceDeskApiOperator(_DeskOperator):
    """Any Desk API v2 call; the XCom value is the JSON answer (None for an empty body).

    :param method: HTTP method.
    :param path: ``cases/1``, ``/api/v2/labels`` ... (templated).
    :param query: query parameters (templated; ``params`` is Airflow's own argument).
    :param json: JSON body (templated).
    """

    template_fields: Sequence[str] = ("path", "query", "json", "desk_conn_id")

    def __init__(self, *, path: str, method: str = "GET", query: Mapping[str, Any] | None = None,
                 json: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method = method.upper()
        self.path = path
        self.query = query
        self.json = json

    def execute(self, context: Context) -> Any:
        response = self.hook.request(self.method, self.path, params=self.query, json=self.json)
        return response.json() if response.content else None


class SalesforceDeskToFileOperator(_DeskOperator):
    """Write a Desk collection - every entry, or a search's results - to a file, page by page
    (constant memory). The XCom value is ``{"uri", "rows"}``.

    Each row is the entry's fields plus ``<link>_id`` columns (``customer_id``); nested values
    (``message``) are written the way :class:`~airflow_provider_salesforce_suite.io.RecordWriter`
    writes nested values for every export.

    :param collection: ``articles``, ``cases``, ``companies``, ``customers``, ``groups``, ``topics``,
        ``users``, ``labels`` or ``filters``.
    :param output_uri: destination: local path, URI or ``ObjectStoragePath`` (templated).
    :param output_format: ``csv``, ``jsonl``, ``parquet`` (``+ ".gz"``); default from the suffix.
    :param search: search ``cases``, ``customers`` or ``articles`` with these filters (templated).
    :param per_page: entries per request (1..100).
    """

    template_fields: Sequence[str] = ("output_uri", "search", "desk_conn_id")

    def __init__(self, *, collection: str, output_uri: Any, output_format: str | None = None,
                 search: Mapping[str, Any] | None = None, per_page: int = MAX_PER_PAGE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if collection not in COLLECTIONS:
            raise ValueError(f"collection must be one of {', '.join(COLLECTIONS)}, not {collection!r}")
        if search is not None and collection not in _SEARCHABLE:
            raise ValueError(f"Desk can search {', '.join(_SEARCHABLE)}, not {collection}")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")
        self.collection = collection
        self.output_uri = output_uri
        self.output_format = output_format
        self.search = search
        self.per_page = per_page

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_salesforce_suite.io import RecordWriter

        hook = self.hook
        path = hook.collection_path(self.collection, search=self.search is not None)
        with RecordWriter(self.output_uri, self.output_format) as writer:
            for page in hook.iter_pages(path, self.search, per_page=self.per_page):
                writer.write_page(flat_entry(entry) for entry in page)
        self.log.info("Wrote %d Desk %s to %s", writer.rows, self.collection, writer.uri)
        return {"uri": writer.uri, "rows": writer.rows}
