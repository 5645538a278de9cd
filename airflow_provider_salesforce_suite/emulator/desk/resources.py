"""What each Desk resource accepts and how it is rendered as HAL JSON.

Links to other resources are kept in the row as ``_link_<name>`` (an id) and rendered under
``_links`` as ``{"href": "/api/v2/customers/1", "class": "customer"}``, as Desk did.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from ..errors import SalesforceApiError
from .store import DeskStore

PREFIX = "/api/v2"
CASE_TYPES = ("email", "phone", "chat", "twitter", "facebook", "qna")
CASE_STATUSES = ("new", "open", "pending", "resolved", "closed")
REPLY_STATUSES = ("draft", "pending", "sent", "received", "failed")


@dataclass(frozen=True)
class Kind:
    """One resource kind.

    :param name: collection name (``cases``).
    :param cls: Desk's ``class`` of one entry (``case``).
    :param fields: fields a client may set.
    :param required: fields that must not be blank on create.
    :param links: link name -> collection a client may point at (``customer`` -> ``customers``).
    :param children: sub-collections rendered as links (``notes``, ``replies``).
    :param unique: a field whose value must be unique (Desk's ``taken``).
    """

    name: str
    cls: str
    fields: frozenset[str]
    required: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)
    children: tuple[str, ...] = ()
    unique: str | None = None


_ATTACHMENT = frozenset({"file_name", "content_type", "content"})
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("cases", "case", frozenset({"type", "subject", "description", "priority", "status", "labels", "language",
                                     "external_id", "custom_fields", "message", "blurb"}),
         required=("subject",), links={"customer": "customers", "assigned_user": "users", "assigned_group": "groups"},
         children=("notes", "replies", "attachments")),
    Kind("articles", "article", frozenset({"subject", "body", "keywords", "position", "quickcode", "in_support_center",
                                           "internal_notes", "publish_at"}),
         required=("subject",), links={"topic": "topics"}, children=("attachments",)),
    Kind("companies", "company", frozenset({"name", "domains", "custom_fields"}), required=("name",),
         children=("cases", "customers"), unique="name"),
    Kind("customers", "customer", frozenset({"first_name", "last_name", "title", "background", "language", "locked_until",
                                             "external_id", "emails", "phone_numbers", "addresses", "custom_fields"}),
         links={"company": "companies"}, children=("cases",)),
    Kind("topics", "topic", frozenset({"name", "description", "position", "allow_questions", "in_support_center"}),
         required=("name",), children=("articles",), unique="name"),
    Kind("labels", "label", frozenset({"name", "description", "color", "enabled", "types", "position"}),
         required=("name",), unique="name"),
    Kind("groups", "group", frozenset({"name"}), required=("name",), unique="name"),
    Kind("users", "user", frozenset()),
    Kind("filters", "filter", frozenset(), children=("cases",)),
    Kind("notes", "note", frozenset({"body"}), required=("body",)),
    Kind("replies", "reply", frozenset({"body", "direction", "status", "subject", "to", "from", "cc", "bcc"}),
         required=("body",)),
    Kind("attachments", "attachment", _ATTACHMENT, required=("file_name", "content")),
)}


def not_found() -> SalesforceApiError:
    """Desk's 404 (rendered ``{"message": "Resource Not Found"}``)."""
    return SalesforceApiError("NOT_FOUND", "Resource Not Found", status=404)


def validation_failed(errors: dict[str, Any]) -> SalesforceApiError:
    """Desk's 422 ``{"message": "Validation Failed", "errors": {...}}``.

    :param errors: field -> reasons (``["blank"]``).
    """
    return SalesforceApiError("VALIDATION_FAILED", "Validation Failed", status=422, fields=list(errors),
                              extra={"errors": errors})


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == [] or value == {}


def _link_id(href: Any, collection: str) -> int | None:
    text = str(href.get("href") if isinstance(href, dict) else href or "")
    head, _, tail = text.rstrip("/").rpartition("/")
    return int(tail) if tail.isdigit() and head.endswith(f"/{collection}") else None


def _check_values(kind: Kind, values: dict[str, Any], errors: dict[str, list[str]]) -> None:
    if kind.name == "cases":
        if "type" in values and values["type"] not in CASE_TYPES:
            errors["type"] = ["inclusion"]
        if "status" in values and values["status"] not in CASE_STATUSES:
            errors["status"] = ["inclusion"]
        if "priority" in values and not (isinstance(values["priority"], int) and 1 <= values["priority"] <= 10):
            errors["priority"] = ["invalid"]
        if "labels" in values and not (isinstance(values["labels"], list)
                                       and all(isinstance(v, str) for v in values["labels"])):
            errors["labels"] = ["invalid"]
    if kind.name == "customers" and "emails" in values:
        emails = values["emails"]
        if not isinstance(emails, list) or not all(isinstance(e, dict) and "@" in str(e.get("value", ""))
                                                   for e in emails):
            errors["emails"] = {"value": ["invalid"]}  # type: ignore[assignment]
    if kind.name == "replies" and "status" in values and values["status"] not in REPLY_STATUSES:
        errors["status"] = ["inclusion"]
    if kind.name == "attachments" and isinstance(values.get("content"), str):
        try:
            base64.b64decode(values["content"], validate=True)
        except (binascii.Error, ValueError):
            errors["content"] = ["invalid"]


def validate(store: DeskStore, kind: Kind, body: Any, *, creating: bool, row_id: int | None = None) -> dict[str, Any]:
    """Check a create/update body; returns the row changes (links as ``_link_<name>``).

    :param store: the Desk store (links must point at existing rows).
    :param kind: the resource kind.
    :param body: the parsed JSON body.
    :param creating: whether required fields apply.
    :param row_id: the row being updated (its own unique value is not "taken").
    :raises SalesforceApiError: 422 naming every bad field.
    """
    if not isinstance(body, dict):
        raise validation_failed({"base": ["invalid"]})
    errors: dict[str, list[str]] = {}
    values = {k: v for k, v in body.items() if k != "_links"}
    for name in values:
        if name not in kind.fields:
            errors[name] = ["invalid"]
    if creating:
        for name in kind.required:
            if _blank(values.get(name)):
                errors[name] = ["blank"]
    else:
        for name in kind.required:
            if name in values and _blank(values[name]):
                errors[name] = ["blank"]
    _check_values(kind, values, errors)
    if kind.unique and not errors.get(kind.unique) and values.get(kind.unique) is not None:
        wanted = str(values[kind.unique]).lower()
        if any(str(r.get(kind.unique, "")).lower() == wanted for r in store.all(kind.name)
               if r["id"] != row_id):
            errors[kind.unique] = ["taken"]
    links = body.get("_links") or {}
    if not isinstance(links, dict):
        errors["_links"] = ["invalid"]
        links = {}
    for name, target in links.items():
        collection = kind.links.get(name)
        target_id = _link_id(target, collection) if collection else None
        if collection is None or target_id is None or store.get(collection, target_id) is None:
            errors[name] = ["invalid"]
        else:
            values[f"_link_{name}"] = target_id
    if errors:
        raise validation_failed(errors)
    return values


def href(collection: str, row_id: int | None = None, suffix: str = "") -> str:
    """``/api/v2/cases/1/notes``.

    :param collection: collection name.
    :param row_id: the entry's id.
    :param suffix: a sub-path.
    """
    return f"{PREFIX}/{collection}" + (f"/{row_id}" if row_id is not None else "") + suffix


def render(kind: Kind, row: dict[str, Any], base: str | None = None) -> dict[str, Any]:
    """A row as a HAL entry: fields, then ``_links`` (self, linked resources, sub-collections).

    :param kind: the resource kind.
    :param row: the stored row.
    :param base: the self href when the entry lives under a parent (``/api/v2/cases/1/notes``).
    """
    entry = {k: v for k, v in row.items() if not k.startswith("_link_") and k != "content"}
    links: dict[str, Any] = {"self": {"href": f"{base or href(kind.name)}/{row['id']}", "class": kind.cls}}
    for name, collection in kind.links.items():
        target = row.get(f"_link_{name}")
        links[name] = {"href": href(collection, target), "class": KINDS[collection].cls} if target else None
    for child in kind.children:
        links[child] = {"href": href(kind.name, row["id"], f"/{child}"), "class": KINDS[child].cls}
    entry["_links"] = links
    return entry
