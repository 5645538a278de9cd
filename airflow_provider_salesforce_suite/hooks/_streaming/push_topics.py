"""PushTopic records (``/topic/<Name>`` channels) through the REST sObject endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import quote

from airflow_provider_salesforce_suite.core.errors import SalesforceNotFoundError

if TYPE_CHECKING:
    import requests

PUSH_TOPIC = "PushTopic"
#: Salesforce caps PushTopic names at 25 characters.
MAX_NAME_LENGTH = 25
NOTIFY_FOR_FIELDS = ("All", "Referenced", "Select", "Where")
OPERATIONS = ("create", "update", "delete", "undelete")
_FIELDS = ("Id", "Name", "Query", "ApiVersion", "IsActive", "NotifyForFields", "NotifyForOperationCreate",
           "NotifyForOperationUpdate", "NotifyForOperationDelete", "NotifyForOperationUndelete", "Description")
# Fields callers may change, by the keyword they use.
_CHANGEABLE = {"query": "Query", "notify_for_fields": "NotifyForFields", "api_version": "ApiVersion",
               "is_active": "IsActive", "description": "Description"}


def soql_string(value: str) -> str:
    """A SOQL string literal (quotes and backslashes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def validate_name(name: Any) -> str:
    """:raises ValueError: not a non-empty string of at most 25 characters."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"PushTopic name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"PushTopic name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return name


def topic_fields(*, query: str | None = None, notify_for_fields: str | None = None,
                 operations: Sequence[str] | None = None, api_version: str | float | None = None,
                 is_active: bool | None = None, description: str | None = None) -> dict[str, Any]:
    """The PushTopic fields for the given options (None: leave out).

    :raises ValueError: an empty query, unknown ``notify_for_fields`` or operation, a bad API version.
    """
    fields: dict[str, Any] = {}
    if query is not None:
        if not isinstance(query, str) or not query.strip():
            raise ValueError("PushTopic query must be a non-empty SOQL SELECT")
        fields["Query"] = query
    if notify_for_fields is not None:
        if notify_for_fields not in NOTIFY_FOR_FIELDS:
            raise ValueError(f"notify_for_fields must be one of {NOTIFY_FOR_FIELDS}, not {notify_for_fields!r}")
        fields["NotifyForFields"] = notify_for_fields
    if operations is not None:
        chosen = [operations] if isinstance(operations, str) else list(operations)
        unknown = sorted(set(op.lower() if isinstance(op, str) else op for op in chosen) - set(OPERATIONS))
        if unknown or not chosen:
            raise ValueError(f"operations must be a non-empty subset of {OPERATIONS}, got {operations!r}")
        lowered = {op.lower() for op in chosen}
        fields.update({f"NotifyForOperation{op.capitalize()}": op in lowered for op in OPERATIONS})
    if api_version is not None:
        try:
            fields["ApiVersion"] = float(api_version)
        except (TypeError, ValueError):
            raise ValueError(f"api_version must look like '64.0', got {api_version!r}") from None
    if is_active is not None:
        fields["IsActive"] = bool(is_active)
    if description is not None:
        fields["Description"] = description
    return fields


def differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The wanted fields whose value differs from the record (API versions compared as numbers)."""
    changed = {}
    for field, value in wanted.items():
        have = current.get(field)
        if field == "ApiVersion" and have is not None and float(have) == float(value):
            continue
        if have != value:
            changed[field] = value
    return changed


class PushTopicMixin:
    """PushTopic management for :class:`~airflow_provider_salesforce_suite.hooks.streaming.SalesforceStreamingHook`
    (uses the base hook's ``request`` and ``data_url``)."""

    request: Any
    data_url: Any
    api_version: str

    def _topic_url(self, record_id: str | None = None) -> str:
        return self.data_url(f"sobjects/{PUSH_TOPIC}" + (f"/{quote(record_id, safe='')}" if record_id else ""))

    def get_push_topic(self, name: str) -> dict[str, Any] | None:
        """The PushTopic record named ``name`` (its fields, without ``attributes``), or None.

        :param name: the topic name (the channel is ``/topic/<name>``).
        """
        soql = f"SELECT {', '.join(_FIELDS)} FROM {PUSH_TOPIC} WHERE Name = {soql_string(validate_name(name))}"
        response: requests.Response = self.request("GET", self.data_url("query"), params={"q": soql})
        records = response.json().get("records") or []
        if not records:
            return None
        return {k: v for k, v in records[0].items() if k != "attributes"}

    def create_push_topic(self, name: str, query: str, *, notify_for_fields: str = "Referenced",
                          operations: Sequence[str] = OPERATIONS, api_version: str | None = None,
                          description: str | None = None) -> str:
        """Create a PushTopic and return its id.

        :param name: topic name (at most 25 characters; the channel is ``/topic/<name>``).
        :param query: the SOQL ``SELECT`` whose matching records produce events.
        :param notify_for_fields: ``All``, ``Referenced`` (default), ``Select`` or ``Where``.
        :param operations: which of ``create``, ``update``, ``delete``, ``undelete`` notify.
        :param api_version: the topic's API version (default: the connection's).
        :param description: optional description.
        """
        record = {"Name": validate_name(name), **topic_fields(
            query=query, notify_for_fields=notify_for_fields, operations=operations, api_version=api_version,
            description=description)}
        record.setdefault("ApiVersion", float(self.api_version))
        return self.request("POST", self._topic_url(), json=record).json()["id"]

    def update_push_topic(self, name: str, **changes: Any) -> None:
        """Change fields of the PushTopic ``name``.

        :param name: the topic name.
        :param changes: any of ``query``, ``notify_for_fields``, ``operations``, ``api_version``,
            ``is_active``, ``description``.
        :raises ValueError: an unknown option.
        :raises SalesforceNotFoundError: no topic named ``name``.
        """
        unknown = set(changes) - set(_CHANGEABLE) - {"operations"}
        if unknown:
            raise ValueError(f"unknown PushTopic option(s) {sorted(unknown)}; use {sorted([*_CHANGEABLE, 'operations'])}")
        fields = topic_fields(**changes)
        topic = self._require(name)
        if fields:
            self.request("PATCH", self._topic_url(topic["Id"]), json=fields)

    def delete_push_topic(self, name: str) -> str:
        """Delete the PushTopic ``name`` and return its id.

        :raises SalesforceNotFoundError: no topic named ``name``.
        """
        topic_id = self._require(name)["Id"]
        self.request("DELETE", self._topic_url(topic_id))
        return topic_id

    def ensure_push_topic(self, name: str, query: str, **options: Any) -> tuple[str, bool]:
        """Make the PushTopic ``name`` exist with this query and options; change only what differs.

        :param name: the topic name.
        :param query: the SOQL ``SELECT``.
        :param options: ``notify_for_fields`` (default ``Referenced``), ``operations`` (default all
            four), ``api_version`` (default: the connection's), ``description``, ``is_active`` (default True).
        :return: ``(id, changed)``: changed is False when the topic already matched.
        """
        unknown = set(options) - set(_CHANGEABLE) - {"operations"} - {"query"}
        if unknown or "query" in options:
            raise ValueError(f"unknown PushTopic option(s) {sorted(unknown | ({'query'} & set(options)))}")
        wanted = topic_fields(
            query=query, notify_for_fields=options.get("notify_for_fields", "Referenced"),
            operations=options.get("operations", OPERATIONS), api_version=options.get("api_version"),
            is_active=options.get("is_active", True), description=options.get("description"))
        wanted.setdefault("ApiVersion", float(self.api_version))
        current = self.get_push_topic(name)
        if current is None:
            record = {"Name": validate_name(name), **wanted}
            return self.request("POST", self._topic_url(), json=record).json()["id"], True
        changed = differs(current, wanted)
        if changed:
            self.request("PATCH", self._topic_url(current["Id"]), json=changed)
        return current["Id"], bool(changed)

    def _require(self, name: str) -> dict[str, Any]:
        topic = self.get_push_topic(name)
        if topic is None:
            raise SalesforceNotFoundError(404, "NOT_FOUND", f"no PushTopic named {name!r}", method="GET",
                                          path=self.data_url("query"))
        return topic
