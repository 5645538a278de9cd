"""List views: ``sobjects/{obj}/listviews``, ``.../{id}``, ``.../{id}/describe``, ``.../{id}/results``.

Every searchable object has two standard list views, derived from metadata (so ids are stable
across resets): "All <plural>" and "Recently Viewed <plural>" (touched in the last 30 days).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..errors import SalesforceApiError
from ..ids import normalize, to_18
from ..metadata.describe import version_path
from ..metadata.model import Metadata, ObjectDef
from ..sosl.engine import searchable_objects
from ..web import json_response, state_of
from .versions import parse_version

KEY_PREFIX = "00B"
DEFAULT_LIMIT = 25
MAX_LIMIT = 2000
_HIDDEN = ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp")


@dataclass(frozen=True)
class ListView:
    """One list view.

    :param id: 18-char id (``00B`` prefix).
    :param sobject: object name.
    :param developer_name: API name (``AllAccounts``).
    :param label: display label.
    :param columns: selected fields, visible ones first.
    :param where: the filter (SOQL), or empty.
    :param order: the ORDER BY clause.
    """

    id: str
    sobject: str
    developer_name: str
    label: str
    columns: tuple[str, ...]
    where: str
    order: str

    @property
    def soql(self) -> str:
        """The view's query, as ``describe`` reports it."""
        where = f" WHERE {self.where}" if self.where else ""
        return f"SELECT {', '.join(self.columns)} FROM {self.sobject}{where} ORDER BY {self.order}"


def _views_of(obj: ObjectDef, number: int) -> list[ListView]:
    plural = obj.label_plural.replace(" ", "")
    name = obj.name_field.name if obj.name_field else "Id"
    visible = [name] + [f for f in ("Phone", "Email", "Industry", "StageName", "Status") if obj.field(f)][:2]
    columns = tuple(dict.fromkeys([*visible, *_HIDDEN]))
    return [
        ListView(to_18(f"{KEY_PREFIX}{number * 2 + 1:012d}"), obj.name, f"All{plural}", f"All {obj.label_plural}",
                 columns, "", f"{name} ASC NULLS FIRST, Id ASC NULLS FIRST"),
        ListView(to_18(f"{KEY_PREFIX}{number * 2 + 2:012d}"), obj.name, f"RecentlyViewed{plural}",
                 f"Recently Viewed {obj.label_plural}", columns, "LastModifiedDate = LAST_N_DAYS:30",
                 "LastModifiedDate DESC NULLS LAST, Id DESC NULLS LAST"),
    ]


@functools.lru_cache(maxsize=8)
def _all_views(metadata: Metadata) -> dict[str, list[ListView]]:
    return {obj.name: _views_of(obj, n) for n, obj in enumerate(searchable_objects(metadata))}


def list_views_of(metadata: Metadata, sobject: str) -> list[ListView]:
    """The list views of an object (NOT_FOUND for an unknown object).

    :param metadata: the org's metadata.
    :param sobject: object name, any casing.
    """
    return _all_views(metadata).get(metadata.require(sobject).name, [])


def list_view_by_id(metadata: Metadata, view_id: str) -> ListView | None:
    """The list view with this id, on any object.

    :param metadata: the org's metadata.
    :param view_id: 15- or 18-char id.
    """
    wanted = normalize(view_id)
    return next((v for views in _all_views(metadata).values() for v in views if v.id == wanted), None)


def _view(request: web.Request) -> tuple[ListView, ObjectDef]:
    metadata = state_of(request).store.metadata
    obj = metadata.require(request.match_info["sobject"])
    view = list_view_by_id(metadata, request.match_info["list_view_id"])
    if view is None or view.sobject != obj.name:
        raise SalesforceApiError("NOT_FOUND", "The requested resource does not exist", status=404)
    return view, obj


def _basic(view: ListView, version: str) -> dict[str, Any]:
    url = f"{version_path(version)}/sobjects/{view.sobject}/listviews/{view.id}"
    return {"describeUrl": f"{url}/describe", "developerName": view.developer_name, "id": view.id,
            "label": view.label, "resultsUrl": f"{url}/results", "soqlCompatible": True, "url": url}


def _columns(view: ListView, obj: ObjectDef) -> list[dict[str, Any]]:
    columns = []
    for name in view.columns:
        fdef = obj.fields[name] if name in obj.fields else obj.field(name)
        sortable = fdef.type not in ("textarea", "multipicklist", "base64")
        columns.append({
            "ascendingLabel": "A-Z" if fdef.type == "string" else "Low to High",
            "descendingLabel": "Z-A" if fdef.type == "string" else "High to Low",
            "fieldNameOrPath": fdef.name, "hidden": fdef.name in _HIDDEN, "label": fdef.label,
            "searchable": fdef.type in ("string", "email", "phone"), "selectListItem": fdef.name,
            "sortDirection": "ascending" if view.order.startswith(fdef.name + " ASC") else None,
            "sortIndex": 0 if view.order.startswith(fdef.name + " ") else None,
            "sortable": sortable, "type": fdef.type,
        })
    return columns


async def list_views(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/listviews``."""
    version = parse_version(request.match_info["version"])
    store = state_of(request).store
    obj = store.metadata.require(request.match_info["sobject"])
    views = [_basic(v, version) for v in list_views_of(store.metadata, obj.name)]
    return json_response({"done": True, "listviews": views, "nextRecordsUrl": None, "size": len(views),
                          "sobjectType": obj.name})


async def list_view(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/listviews/{id}``."""
    view, _ = _view(request)
    return json_response(_basic(view, parse_version(request.match_info["version"])))


async def describe_list_view(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/listviews/{id}/describe``: columns, query, order."""
    parse_version(request.match_info["version"])
    view, obj = _view(request)
    direction, *_ = view.order.split(",")[0].split()[1:] or ["ASC"]
    return json_response({
        "columns": _columns(view, obj), "id": view.id,
        "orderBy": [{"fieldNameOrPath": view.order.split()[0], "nullsPosition": "first" if "FIRST" in view.order.split(",")[0] else "last",
                     "sortDirection": "ascending" if direction == "ASC" else "descending"}],
        "query": view.soql, "scope": "everything", "sobjectType": obj.name,
        "whereCondition": {"conditions": []} if not view.where else {"field": view.where.split()[0],
                                                                     "operator": "equals",
                                                                     "values": [view.where.split()[-1]]},
    })


def _limit(request: web.Request, name: str, default: int, upper: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SalesforceApiError("INVALID_QUERY_PARAMETER_VALUE", f"Invalid value for {name}: {raw}") from None
    if not 0 <= value <= upper:
        raise SalesforceApiError("INVALID_QUERY_PARAMETER_VALUE", f"{name} must be between 0 and {upper}")
    return value


def _text(value: Any) -> str | None:
    # List view results carry every value as text (booleans as "true"/"false"), nulls as null.
    if value is None:
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


async def list_view_results(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/listviews/{id}/results?limit=&offset=``."""
    version = parse_version(request.match_info["version"])
    view, obj = _view(request)
    limit = _limit(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    offset = _limit(request, "offset", 0, 2000)
    store = state_of(request).store
    total = store.query(f"SELECT COUNT() FROM {view.sobject}" + (f" WHERE {view.where}" if view.where else ""),
                        api_version=version)["totalSize"]
    page = store.query(f"{view.soql} LIMIT {limit} OFFSET {offset}", api_version=version)["records"] if limit else []
    records = [{"columns": [{"fieldNameOrPath": name, "value": _text(record.get(name))} for name in view.columns]}
               for record in page]
    return json_response({"columns": _columns(view, obj), "developerName": view.developer_name,
                          "done": offset + len(records) >= total, "id": view.id, "label": view.label,
                          "records": records, "size": total})
