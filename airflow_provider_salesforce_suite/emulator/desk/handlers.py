"""Desk API v2 handlers: lists and searches as HAL pages, show, create, update, case actions."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any, Callable
from urllib.parse import urlencode

from aiohttp import web

from ..web import read_json, session_of
from .resources import CASE_STATUSES, KINDS, Kind, href, not_found, render, validate, validation_failed
from .service import service_of
from .store import DeskStore

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100
JSON_TYPE = "application/json; charset=utf-8"

#: Fields a search may sort on (``sort_field``).
_SORT_FIELDS = ("id", "created_at", "updated_at", "received_at", "priority", "status", "subject", "name")


def _response(request: web.Request, body: Any, status: int = 200) -> web.Response:
    """JSON with an ETag; a GET whose ``If-None-Match`` matches gets an empty 304."""
    raw = json.dumps(body).encode("utf-8")
    etag = '"' + hashlib.sha1(raw).hexdigest() + '"'
    if request.method == "GET" and etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=raw, status=status, headers={"Content-Type": JSON_TYPE, "ETag": etag})


def _int_param(request: web.Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise validation_failed({name: ["invalid"]})
    return int(value)


def _page(request: web.Request, entries: list[dict[str, Any]], render_one: Callable[[dict], dict]) -> web.Response:
    """One page of ``entries`` with Desk's ``total_entries``, ``page`` and paging links."""
    page = _int_param(request, "page", 1)
    per_page = min(_int_param(request, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    last = max(1, -(-len(entries) // per_page))
    kept = [(k, v) for k, v in request.query.items() if k not in ("page", "per_page")]

    def link(number: int) -> dict[str, str]:
        return {"href": f"{request.path}?{urlencode([('page', number), ('per_page', per_page), *kept])}",
                "class": "page"}

    body = {
        "total_entries": len(entries),
        "page": page,
        "_links": {"self": link(page), "first": link(1), "last": link(last),
                   "previous": link(page - 1) if 1 < page <= last + 1 else None,
                   "next": link(page + 1) if page < last else None},
        "_embedded": {"entries": [render_one(e) for e in entries[(page - 1) * per_page: page * per_page]]},
    }
    return _response(request, body)


def _kind(request: web.Request) -> Kind:
    return KINDS[request.match_info["collection"]]


def _row(store: DeskStore, collection: str, raw_id: str) -> dict[str, Any]:
    row = store.get(collection, int(raw_id))
    if row is None:
        raise not_found()
    return row


# -- collections ------------------------------------------------------------------------------------
async def list_entries(request: web.Request) -> web.Response:
    """``GET /api/v2/{collection}``."""
    kind = _kind(request)
    return _page(request, service_of(request).store.all(kind.name), lambda r: render(kind, r))


async def show(request: web.Request) -> web.Response:
    """``GET /api/v2/{collection}/{id}``."""
    kind = _kind(request)
    return _response(request, render(kind, _row(service_of(request).store, kind.name, request.match_info["id"])))


async def me(request: web.Request) -> web.Response:
    """``GET /api/v2/users/me``: the authenticated agent."""
    return _response(request, render(KINDS["users"], session_of(request)))


async def create(request: web.Request) -> web.Response:
    """``POST /api/v2/{collection}``: 201 with the new entry."""
    kind, store = _kind(request), service_of(request).store
    values = validate(store, kind, await read_json(request), creating=True)
    if kind.name == "cases":
        values = {"type": "email", "status": "new", "priority": 4, "labels": [], **values}
        message = values.get("message")
        if isinstance(message, dict) and not values.get("blurb"):
            values["blurb"] = str(message.get("body", ""))[:100]
        values.setdefault("received_at", None)
    return _response(request, render(kind, store.insert(kind.name, values)), status=201)


async def update(request: web.Request) -> web.Response:
    """``PATCH /api/v2/{collection}/{id}``: the updated entry."""
    kind, store = _kind(request), service_of(request).store
    row = _row(store, kind.name, request.match_info["id"])
    values = validate(store, kind, await read_json(request), creating=False, row_id=row["id"])
    return _response(request, render(kind, store.update(kind.name, row["id"], values)))


# -- search ---------------------------------------------------------------------------------------
def _timestamp(request: web.Request, name: str) -> float | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise validation_failed({name: ["invalid"]}) from None


def _epoch(iso: str | None) -> float:
    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp() if iso else 0.0


def _contains(haystack: Any, needle: str) -> bool:
    return needle.lower() in json.dumps(haystack).lower() if haystack is not None else False


def _common_filters(request: web.Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``since_/max_`` created/updated (epoch seconds) and ``since_id``/``max_id``, then sorting."""
    for field in ("created_at", "updated_at"):
        since, until = _timestamp(request, f"since_{field}"), _timestamp(request, f"max_{field}")
        if since is not None:
            rows = [r for r in rows if _epoch(r.get(field)) >= since]
        if until is not None:
            rows = [r for r in rows if _epoch(r.get(field)) <= until]
    since_id, max_id = _timestamp(request, "since_id"), _timestamp(request, "max_id")
    if since_id is not None:
        rows = [r for r in rows if r["id"] > since_id]
    if max_id is not None:
        rows = [r for r in rows if r["id"] <= max_id]
    sort_field = request.query.get("sort_field", "id")
    direction = request.query.get("sort_direction", "asc")
    errors = {}
    if sort_field not in _SORT_FIELDS:
        errors["sort_field"] = ["inclusion"]
    if direction not in ("asc", "desc"):
        errors["sort_direction"] = ["inclusion"]
    if errors:
        raise validation_failed(errors)
    # The id breaks ties, so pages stay stable while a client walks them.
    return sorted(rows, key=lambda r: (str(r.get(sort_field) or "") if sort_field != "id" else "", r["id"]),
                  reverse=direction == "desc")


def _case_matches(store: DeskStore, query: Any, row: dict[str, Any]) -> bool:
    customer = store.get("customers", row["_link_customer"]) if row.get("_link_customer") else None
    company = (store.get("companies", customer["_link_company"])
               if customer and customer.get("_link_company") else None)
    checks = {
        "q": lambda v: _contains([row.get("subject"), row.get("description"), row.get("message")], v),
        "subject": lambda v: _contains(row.get("subject"), v),
        "description": lambda v: _contains(row.get("description"), v),
        "status": lambda v: row.get("status") in v.split(","),
        "priority": lambda v: str(row.get("priority")) in v.split(","),
        "labels": lambda v: any(label in (row.get("labels") or []) for label in v.split(",")),
        "case_id": lambda v: str(row["id"]) in v.split(","),
        "channels": lambda v: row.get("type") in v.split(","),
        "email": lambda v: customer is not None and _contains(customer.get("emails"), v),
        "name": lambda v: customer is not None and _contains(
            [customer.get("first_name"), customer.get("last_name")], v),
        "company": lambda v: company is not None and (v == str(company["id"]) or _contains(company.get("name"), v)),
        "assigned_user": lambda v: str(row.get("_link_assigned_user")) == v,
        "assigned_group": lambda v: str(row.get("_link_assigned_group")) == v,
    }
    return all(check(query[name]) for name, check in checks.items() if name in query)


def _customer_matches(query: Any, row: dict[str, Any]) -> bool:
    full = f"{row.get('first_name') or ''} {row.get('last_name') or ''}".strip()
    checks = {
        "email": lambda v: _contains(row.get("emails"), v),
        "first_name": lambda v: _contains(row.get("first_name"), v),
        "last_name": lambda v: _contains(row.get("last_name"), v),
        "full_name": lambda v: _contains(full, v),
        "phone": lambda v: _contains(row.get("phone_numbers"), v),
        "external_id": lambda v: row.get("external_id") == v,
    }
    return all(check(query[name]) for name, check in checks.items() if name in query)


def _article_matches(query: Any, row: dict[str, Any]) -> bool:
    checks = {
        "text": lambda v: _contains([row.get("subject"), row.get("body")], v),
        "topic_ids": lambda v: str(row.get("_link_topic")) in v.split(","),
        "in_support_center": lambda v: str(bool(row.get("in_support_center"))).lower() == v.lower(),
    }
    return all(check(query[name]) for name, check in checks.items() if name in query)


async def search(request: web.Request) -> web.Response:
    """``GET /api/v2/{cases|customers|articles}/search`` with Desk's filters."""
    kind, store = _kind(request), service_of(request).store
    query = request.query
    if kind.name == "cases" and "status" in query:
        bad = [s for s in query["status"].split(",") if s not in CASE_STATUSES]
        if bad:
            raise validation_failed({"status": ["inclusion"]})
    rows = store.all(kind.name)
    if kind.name == "cases":
        rows = [r for r in rows if _case_matches(store, query, r)]
    elif kind.name == "customers":
        rows = [r for r in rows if _customer_matches(query, r)]
    else:
        rows = [r for r in rows if _article_matches(query, r)]
    return _page(request, _common_filters(request, rows), lambda r: render(kind, r))


# -- sub-collections ----------------------------------------------------------------------------------
def _related(store: DeskStore, parent: str, parent_row: dict[str, Any], child: str) -> list[dict[str, Any]]:
    """Entries linked to a parent rather than stored under it (a company's cases, a filter's cases)."""
    if parent == "filters":
        return [r for r in store.all("cases") if r.get("status") in parent_row.get("statuses", [])]
    if parent == "companies" and child == "customers":
        return [r for r in store.all("customers") if r.get("_link_company") == parent_row["id"]]
    if parent == "companies":
        customers = {c["id"] for c in store.all("customers") if c.get("_link_company") == parent_row["id"]}
        return [r for r in store.all("cases") if r.get("_link_customer") in customers]
    if parent == "customers":
        return [r for r in store.all("cases") if r.get("_link_customer") == parent_row["id"]]
    return [r for r in store.all("articles") if r.get("_link_topic") == parent_row["id"]]  # topics/articles


_STORED_CHILDREN = ("notes", "replies", "attachments")


async def list_children(request: web.Request) -> web.Response:
    """``GET /api/v2/{parent}/{id}/{child}``."""
    store = service_of(request).store
    parent, child = request.match_info["parent"], request.match_info["child"]
    row = _row(store, parent, request.match_info["id"])
    kind = KINDS[child]
    if child in _STORED_CHILDREN:
        base = href(parent, row["id"], f"/{child}")
        return _page(request, store.all(child, (parent, row["id"])), lambda r: render(kind, r, base))
    return _page(request, _related(store, parent, row, child), lambda r: render(kind, r))


async def show_child(request: web.Request) -> web.Response:
    """``GET /api/v2/{parent}/{id}/{child}/{child_id}``."""
    store = service_of(request).store
    parent, child = request.match_info["parent"], request.match_info["child"]
    row = _row(store, parent, request.match_info["id"])
    entry = store.get(child, int(request.match_info["child_id"]))
    if entry is None or entry not in store.all(child, (parent, row["id"])):
        raise not_found()
    return _response(request, render(KINDS[child], entry, href(parent, row["id"], f"/{child}")))


def _attachment_values(values: dict[str, Any], parent: str, parent_id: int, next_id: int) -> dict[str, Any]:
    size = len(base64.b64decode(values["content"]))
    return {"content_type": "application/octet-stream", **values, "size": size,
            "url": href(parent, parent_id, f"/attachments/{next_id}/content")}


async def create_child(request: web.Request) -> web.Response:
    """``POST /api/v2/{parent}/{id}/{notes|replies|attachments}``: 201 with the new entry."""
    store = service_of(request).store
    parent, child = request.match_info["parent"], request.match_info["child"]
    row = _row(store, parent, request.match_info["id"])
    values = validate(store, KINDS[child], await read_json(request), creating=True)
    if child == "replies":
        values = {"direction": "out", "status": "sent", **values}
    if child == "notes":
        values["_link_user"] = session_of(request)["id"]
    entry = store.insert(child, values, (parent, row["id"]))
    if child == "attachments":
        extra = _attachment_values(values, parent, row["id"], entry["id"])
        entry = store.update(child, entry["id"], extra)
    return _response(request, render(KINDS[child], entry, href(parent, row["id"], f"/{child}")), status=201)


async def forward(request: web.Request) -> web.Response:
    """``POST /api/v2/cases/{id}/forward`` ``{"to", "cc", "bcc", "note_text"}``: 201 with the outbound reply."""
    store = service_of(request).store
    row = _row(store, "cases", request.match_info["id"])
    body = await read_json(request)
    if not isinstance(body, dict):
        raise validation_failed({"base": ["invalid"]})
    errors = {name: ["invalid"] for name in body if name not in ("to", "cc", "bcc", "note_text")}
    if not body.get("to"):
        errors["to"] = ["blank"]
    elif not all("@" in address for address in str(body["to"]).split(",")):
        errors["to"] = ["invalid"]
    if errors:
        raise validation_failed(errors)
    values = {"body": body.get("note_text") or row.get("blurb") or "", "subject": f"Fwd: {row.get('subject')}",
              "to": body["to"], "cc": body.get("cc"), "bcc": body.get("bcc"), "direction": "out", "status": "sent",
              "forward": True}
    entry = store.insert("replies", values, ("cases", row["id"]))
    return _response(request, render(KINDS["replies"], entry, href("cases", row["id"], "/replies")), status=201)
