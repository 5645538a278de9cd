"""PushTopic channels ``/topic/Name``: which committed record changes a topic reports.

A topic's WHERE clause is evaluated by the one SOQL engine: the topic's own condition, restricted
to the changed record's Id, run with ``queryAll`` semantics (so a deleted record is judged as it
was before the delete). NotifyForFields decides which updates count; ``sobject`` carries the
topic's selected fields from the change's snapshot of the record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SalesforceApiError
from ..soql import ast
from ..soql.parser import parse

if TYPE_CHECKING:
    from ..store import ChangeEvent, Store

log = logging.getLogger(__name__)

#: ChangeEvent.operation -> the PushTopic event's ``type`` and the flag that enables it.
OPERATIONS = {
    "create": ("created", "NotifyForOperationCreate"),
    "update": ("updated", "NotifyForOperationUpdate"),
    "delete": ("deleted", "NotifyForOperationDelete"),
    "undelete": ("undeleted", "NotifyForOperationUndelete"),
}
_TOPIC_FIELDS = ("Id", "Name", "Query", "ApiVersion", "IsActive", "NotifyForFields", *(f for _, f in OPERATIONS.values()))


@dataclass(frozen=True)
class Topic:
    """One active PushTopic, its query taken apart.

    :param name: ``PushTopic.Name`` (the channel is ``/topic/<name>``).
    :param sobject: the FROM object's canonical name.
    :param select: selected field names (canonical casing).
    :param referenced_select: lower-cased selected field names.
    :param referenced_where: lower-cased field names in the WHERE clause.
    :param where: the WHERE clause's text (``None``: every record matches).
    :param notify_for_fields: All, Referenced, Select or Where.
    :param operations: the enabled ``ChangeEvent.operation`` values.
    :param api_version: e.g. ``62.0``.
    """

    name: str
    sobject: str
    select: tuple[str, ...]
    referenced_select: frozenset[str]
    referenced_where: frozenset[str]
    where: str | None
    notify_for_fields: str
    operations: frozenset[str]
    api_version: str

    @property
    def channel(self) -> str:
        """``/topic/<name>``."""
        return f"/topic/{self.name}"

    def notifies_update(self, changed_fields: list[str]) -> bool:
        """Whether an update of these fields is reported (NotifyForFields).

        :param changed_fields: the fields the update changed.
        """
        changed = {f.lower() for f in changed_fields}
        mode = self.notify_for_fields.lower()
        if mode == "all":
            return True
        if mode == "select":
            return bool(changed & self.referenced_select)
        if mode == "where":
            return bool(changed & self.referenced_where)
        return bool(changed & (self.referenced_select | self.referenced_where))


def _field_refs(condition: Any) -> Iterator[ast.FieldRef]:
    if isinstance(condition, ast.BoolOp):
        for item in condition.items:
            yield from _field_refs(item)
    elif isinstance(condition, ast.Not):
        yield from _field_refs(condition.item)
    elif condition is not None:
        left = getattr(condition, "left", None)
        while isinstance(left, ast.FuncCall):
            left = left.arg
        if isinstance(left, ast.FieldRef):
            yield left


def _where_text(soql: str, query: ast.Query) -> str | None:
    """The WHERE clause's text, found after the FROM object's token (parser positions are 1-based)."""
    if query.where is None:
        return None
    lines = soql.splitlines(keepends=True)
    offset = sum(len(line) for line in lines[: query.sobject_line - 1]) + query.sobject_column - 1
    rest = soql[offset + len(query.sobject):].lstrip()
    return rest[len("WHERE"):].strip() if rest[:5].upper() == "WHERE" else None


def parse_topic(store: Store, row: dict[str, Any]) -> Topic:
    """A :class:`Topic` from a ``PushTopic`` row.

    :param store: the store (metadata for canonical names).
    :param row: the record's fields.
    :raises SalesforceApiError: the query is not valid SOQL for this org.
    """
    soql = row["Query"]
    query = parse(soql)
    obj = store.metadata.require(query.sobject)
    select: list[str] = []
    for item in query.select:
        if isinstance(item, ast.SelectField) and len(item.ref.parts) == 1:
            fdef = obj.field(item.ref.parts[0])
            if fdef is None:
                raise SalesforceApiError("INVALID_FIELD", f"No such column '{item.ref.parts[0]}' on entity '{obj.name}'")
            select.append(fdef.name)
    where_fields = {ref.parts[-1].lower() for ref in _field_refs(query.where)}
    version = row.get("ApiVersion") or 66.0
    return Topic(
        name=row["Name"], sobject=obj.name, select=tuple(dict.fromkeys(["Id", *select])),
        referenced_select=frozenset(f.lower() for f in select), referenced_where=frozenset(where_fields),
        where=_where_text(soql, query), notify_for_fields=row.get("NotifyForFields") or "Referenced",
        operations=frozenset(op for op, (_, flag) in OPERATIONS.items() if row.get(flag, True) is not False),
        api_version=f"{float(version):.1f}",
    )


class PushTopics:
    """The org's active PushTopics by FROM object, reloaded after any PushTopic change.

    :param store: the store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_object: dict[str, list[Topic]] | None = None
        self._names: set[str] = set()

    def invalidate(self) -> None:
        """Forget the cached topics (a PushTopic record changed, or the data was reset)."""
        self._by_object = None

    def _load(self) -> dict[str, list[Topic]]:
        by_object = self._by_object
        if by_object is not None:
            return by_object
        by_object, names = {}, set()
        if not self.store.record_counts(["PushTopic"])["sObjects"][0]["count"]:
            # the usual case: no topic, and no SOQL parse (the parser's first build) inside a write
            self._by_object, self._names = by_object, names
            return by_object
        soql = f"SELECT {', '.join(_TOPIC_FIELDS)} FROM PushTopic"
        page = self.store.query(soql, api_version="66.0")
        rows = list(page["records"])
        while not page["done"]:
            page = self.store.query_more(page["nextRecordsUrl"].rsplit("/", 1)[-1], api_version="66.0")
            rows += page["records"]
        for row in rows:
            names.add(row["Name"])
            if not row.get("IsActive", True):
                continue
            try:
                topic = parse_topic(self.store, row)
            except SalesforceApiError as exc:  # Salesforce refuses such topics on save; we skip them
                log.warning("PushTopic %s has an invalid query: %s", row["Name"], exc.message)
                continue
            by_object.setdefault(topic.sobject, []).append(topic)
        self._by_object, self._names = by_object, names
        return by_object

    def exists(self, name: str) -> bool:
        """Whether a PushTopic called ``name`` exists.

        :param name: the topic name.
        """
        self._load()
        return name in self._names

    def watches(self, sobject: str) -> bool:
        """Whether an active PushTopic reports changes of ``sobject`` (answered from the cache).

        :param sobject: a canonical object name.
        """
        return sobject in self._load()

    def matches(self, topic: Topic, record_id: str) -> bool:
        """Whether the record satisfies the topic's WHERE clause (recycle-bin rows included).

        :param topic: the topic.
        :param record_id: the changed record's 18-char id (store-generated, safe to inline).
        """
        if topic.where is None:
            return True
        soql = f"SELECT Id FROM {topic.sobject} WHERE Id = '{record_id}' AND ({topic.where})"
        try:
            return self.store.query(soql, include_deleted=True, api_version=topic.api_version)["totalSize"] > 0
        except SalesforceApiError as exc:
            log.warning("PushTopic %s could not be evaluated: %s", topic.name, exc.message)
            return False

    def events(self, change: ChangeEvent) -> list[tuple[Topic, str, dict[str, Any]]]:
        """The topics that report ``change``: ``(topic, event type, sobject)``.

        :param change: a committed record change.
        """
        if change.sobject == "PushTopic":
            self.invalidate()
            return []
        found = []
        for topic in self._load().get(change.sobject, ()):
            if change.operation not in topic.operations:
                continue
            if change.operation == "update" and not topic.notifies_update(change.changed_fields):
                continue
            if self.matches(topic, change.record_id):
                sobject = {name: change.record.get(name) for name in topic.select}
                found.append((topic, OPERATIONS[change.operation][0], sobject))
        return found
