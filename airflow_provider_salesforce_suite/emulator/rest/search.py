"""REST search resources: ``/search?q=SOSL``, ``/parameterizedSearch`` and ``/query?explain=``."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..errors import SalesforceApiError
from ..ids import normalize
from ..sosl.parser import MAX_RESULTS, SCOPES
from ..web import json_response, read_json, state_of
from . import handlers
from .listviews import list_view_by_id
from .versions import parse_version


async def search(request: web.Request) -> web.Response:
    """``GET .../search/?q=FIND {term} ...``: ``{"searchRecords": [...]}``."""
    version = parse_version(request.match_info["version"])
    sosl = request.query.get("q")
    if not sosl or not sosl.strip():
        raise SalesforceApiError("MALFORMED_SEARCH", "No search term found. The search term must be enclosed in braces.")
    return json_response({"searchRecords": state_of(request).store.search(sosl, api_version=version)})


def _escape_term(text: str) -> str:
    # Inside braces only "}" and "\" need escaping for the term to survive the SOSL round trip.
    return re.sub(r"([\\{}])", r"\\\1", text)


def _int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SalesforceApiError("INVALID_SEARCH", f"Invalid value for parameter {name}: {value}") from None
    if number < 1:
        raise SalesforceApiError("INVALID_SEARCH", f"Invalid value for parameter {name}: {value}")
    return number


def build_sosl(q: str, *, sobjects: list[dict[str, Any]], scope: str = "ALL", overall_limit: int | None = None,
               default_limit: int | None = None, default_fields: list[str] | None = None) -> str:
    """The SOSL statement equivalent to a parameterized search.

    :param q: the search text.
    :param sobjects: ``[{"name", "fields", "where", "limit"}]``.
    :param scope: ``ALL``, ``NAME``, ``EMAIL``, ``PHONE`` or ``SIDEBAR``.
    :param overall_limit: the overall result limit.
    :param default_limit: per-object limit where none is given.
    :param default_fields: fields for objects that name none.
    """
    if scope.upper() not in SCOPES:
        raise SalesforceApiError("INVALID_SEARCH", f"Invalid value for parameter in: {scope}")
    sosl = f"FIND {{{_escape_term(q)}}} IN {scope.upper()} FIELDS"
    specs = []
    for spec in sobjects:
        name = spec.get("name")
        if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
            raise SalesforceApiError("INVALID_SEARCH", f"Invalid sobject name: {name}")
        fields = spec.get("fields") or default_fields or ["Id"]
        body = ", ".join(fields)
        if spec.get("where"):
            body += f" WHERE {spec['where']}"
        limit = spec.get("limit") or default_limit
        if limit:
            body += f" LIMIT {_int(limit, 'limit')}"
        specs.append(f"{name}({body})")
    if specs:
        sosl += " RETURNING " + ", ".join(specs)
    if overall_limit:
        sosl += f" LIMIT {min(_int(overall_limit, 'overallLimit'), MAX_RESULTS)}"
    return sosl


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


async def parameterized_search(request: web.Request) -> web.Response:
    """``GET|POST .../parameterizedSearch/``: a search without SOSL syntax."""
    version = parse_version(request.match_info["version"])
    if request.method == "POST":
        body = await read_json(request)
        if not isinstance(body, dict):
            raise SalesforceApiError("JSON_PARSER_ERROR", "The request body must be a JSON object")
        q = body.get("q")
        sobjects = [dict(s) for s in body.get("sobjects") or [] if isinstance(s, dict)]
        options = body
        default_fields = body.get("fields")
    else:
        query = request.query
        q = query.get("q")
        sobjects = [
            {"name": name, "fields": _split(query.get(f"{name}.fields")) or None,
             "where": query.get(f"{name}.where"), "limit": query.get(f"{name}.limit")}
            for name in query.getall("sobject", [])
        ]
        options = query
        default_fields = _split(query.get("fields")) or None
    if not q or not str(q).strip():
        raise SalesforceApiError("MISSING_ARGUMENT", "Missing q parameter")
    sosl = build_sosl(str(q), sobjects=sobjects, scope=str(options.get("in") or "ALL"),
                      overall_limit=options.get("overallLimit"), default_limit=options.get("defaultLimit"),
                      default_fields=default_fields)
    return json_response({"searchRecords": state_of(request).store.search(sosl, api_version=version)})


async def query(request: web.Request) -> web.Response:
    """``GET .../query/?q=SOQL`` or ``?explain=SOQL | list view id``: results or query plans."""
    explain = request.query.get("explain")
    if explain is None:
        return await handlers.query(request)
    parse_version(request.match_info["version"])
    store = state_of(request).store
    soql = explain.strip()
    if not soql:
        raise SalesforceApiError("MALFORMED_QUERY", "A query string has to be specified")
    record_id = normalize(soql)
    if record_id is not None:
        view = list_view_by_id(store.metadata, record_id)
        if view is None:
            raise SalesforceApiError("INVALID_ID_FIELD", f"Invalid ID: {soql}")
        soql = view.soql
    return json_response(store.explain(soql))
