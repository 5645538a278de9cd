"""Composite resources: ``/composite``, ``/composite/batch``, ``/composite/graph``, ``/composite/tree/{obj}``.

Subrequests go through :func:`.dispatch.dispatch` to the REST handlers themselves. All-or-none
work (``allOrNone`` composites, every graph, trees) runs inside one :meth:`Store.transaction`;
dispatch never really suspends (subrequest bodies are in memory), so no other request's writes
can slip into it.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..errors import SalesforceApiError
from ..store import Store
from ..web import json_response, read_json, session_of, state_of
from .collections import error_item, too_many
from .dispatch import SubResponse, dispatch
from .handlers import _version

# Composite and Composite Batch take up to 25 subrequests (Salesforce REST API Developer Guide,
# https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite.htm
# and .../resources_composite_batch.htm). The errorCode for more (LIMIT_EXCEEDED here) is not documented:
# unconfirmed, see docs/contract-tests.md.
MAX_SUBREQUESTS = 25
MAX_GRAPHS = 75
MAX_GRAPH_NODES = 500
MAX_TREE_RECORDS = 200
MAX_TREE_DEPTH = 5

_REF = re.compile(r"@\{(?P<ref>[A-Za-z0-9_]+)(?P<path>(?:\.[^.\[\]}]+|\[\d+\])*)\}")
_STEP = re.compile(r"\.([^.\[\]}]+)|\[(\d+)\]")
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_]+$")
_COLLECTIONS = re.compile(r"^/services/data/v[0-9.]+/composite/sobjects/?(\?.*)?$")

ROLLED_BACK_MESSAGE = "The transaction was rolled back since another operation in the same transaction failed."


class _Unresolved(Exception):
    def __init__(self, expression: str, ref: str) -> None:
        super().__init__(expression)
        self.expression, self.ref = expression, ref


class _RollBack(Exception):
    """Undo an all-or-none unit of subrequests."""


def _lookup(bodies: dict[str, Any], match: re.Match) -> Any:
    ref, path = match.group("ref"), match.group("path")
    expression = ref + path
    if ref not in bodies:
        raise _Unresolved(expression, ref)
    value = bodies[ref]
    for name, index in _STEP.findall(path):
        if name and isinstance(value, dict) and name in value:
            value = value[name]
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            raise _Unresolved(expression, ref)
    return value


def substitute(value: Any, bodies: dict[str, Any]) -> Any:
    """Replace ``@{ref.path}`` references with values from earlier subresponse bodies.

    A string that is one whole reference takes the referenced value's JSON type.

    :param value: a URL, or a body (any JSON value).
    :param bodies: referenceId -> response body of the subrequests run so far.
    """
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return _lookup(bodies, whole)
        return _REF.sub(lambda m: str(_lookup(bodies, m)), value)
    if isinstance(value, dict):
        return {k: substitute(v, bodies) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, bodies) for v in value]
    return value


def _halted(message: str, status: int = 400) -> SubResponse:
    return SubResponse(status, {}, [{"errorCode": "PROCESSING_HALTED", "message": message}])


def _failed(response: SubResponse) -> bool:
    if not response.ok:
        return True
    # An sObject Collections subresponse is 200 even when records failed.
    body = response.body
    return isinstance(body, list) and any(isinstance(r, dict) and r.get("success") is False for r in body)


def _item(response: SubResponse, reference_id: str) -> dict[str, Any]:
    return {"body": response.body, "httpHeaders": response.headers, "httpStatusCode": response.status,
            "referenceId": reference_id}


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise SalesforceApiError("JSON_PARSER_ERROR", f"Cannot deserialize value of type boolean: {key}", fields=[key])
    return value


def _subrequests(body: Any, key: str, limit: int, what: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list) or not body[key]:
        raise SalesforceApiError("JSON_PARSER_ERROR", f"The request body must contain a non-empty list: {key}",
                                 fields=[key])
    items = body[key]
    if len(items) > limit:
        raise SalesforceApiError("LIMIT_EXCEEDED", f"A {what} request can contain at most {limit} subrequests, "
                                                   f"got {len(items)}")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("method"), str) or not isinstance(item.get("url"), str):
            raise SalesforceApiError("JSON_PARSER_ERROR", "Every subrequest needs a method and a url",
                                     fields=["method", "url"])
    return items


def _check_reference_ids(subrequests: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for sub in subrequests:
        ref = sub.get("referenceId")
        if not isinstance(ref, str) or not _REFERENCE_ID.match(ref):
            raise SalesforceApiError("INVALID_INPUT", f"Invalid referenceId: {ref!r}. Use letters, digits and "
                                                      "underscores only.", fields=["referenceId"])
        if ref in seen:
            raise SalesforceApiError("INVALID_INPUT", f"Duplicate referenceId provided in the request: {ref}",
                                     fields=["referenceId"])
        seen.add(ref)


async def _run_one(request: web.Request, sub: dict[str, Any], bodies: dict[str, Any],
                   all_or_none: bool) -> SubResponse:
    try:
        url = substitute(sub["url"], bodies)
        body = substitute(sub.get("body"), bodies)
    except _Unresolved as missing:
        return _halted(f"Invalid reference specified. No value for {missing.expression} found in "
                       f"{missing.ref}. Provided referenceId ({missing.ref}) must match a successful "
                       "earlier subrequest.")
    if all_or_none and isinstance(body, dict) and _COLLECTIONS.match(str(url)):
        body = {**body, "allOrNone": True}  # the composite's allOrNone overrides its collections'
    return await dispatch(request, sub["method"], str(url), body, sub.get("httpHeaders"))


async def run_composite(request: web.Request, subrequests: list[dict[str, Any]],
                        all_or_none: bool) -> tuple[list[dict[str, Any]], bool]:
    """Run composite subrequests in order; the items of ``compositeResponse`` and overall success.

    :param request: the composite (or graph) request.
    :param subrequests: validated subrequests.
    :param all_or_none: roll everything back when one fails; the others answer PROCESSING_HALTED.
    """
    bodies: dict[str, Any] = {}
    responses: list[SubResponse] = []
    if not all_or_none:
        for sub in subrequests:
            response = await _run_one(request, sub, bodies, False)
            responses.append(response)
            if not _failed(response):
                bodies[sub["referenceId"]] = response.body
        ok = not any(_failed(r) for r in responses)
        return [_item(r, s["referenceId"]) for r, s in zip(responses, subrequests)], ok
    store: Store = state_of(request).store
    try:
        with store.transaction():
            for sub in subrequests:
                response = await _run_one(request, sub, bodies, True)
                responses.append(response)
                if _failed(response):
                    raise _RollBack
                bodies[sub["referenceId"]] = response.body
    except _RollBack:
        failed = len(responses) - 1
        responses = [r if i == failed else _halted(ROLLED_BACK_MESSAGE) for i, r in enumerate(responses)]
        responses += [_halted(ROLLED_BACK_MESSAGE)] * (len(subrequests) - len(responses))
        return [_item(r, s["referenceId"]) for r, s in zip(responses, subrequests)], False
    return [_item(r, s["referenceId"]) for r, s in zip(responses, subrequests)], True


async def composite(request: web.Request) -> web.Response:
    """``POST .../composite``: up to 25 dependent subrequests, optionally all-or-none."""
    _version(request)
    body = await read_json(request)
    subrequests = _subrequests(body, "compositeRequest", MAX_SUBREQUESTS, "composite")
    all_or_none = _bool(body, "allOrNone")
    _bool(body, "collateSubrequests")  # only a performance hint for Salesforce; validated, not needed here
    _check_reference_ids(subrequests)
    items, _ = await run_composite(request, subrequests, all_or_none)
    return json_response({"compositeResponse": items})


async def graph(request: web.Request) -> web.Response:
    """``POST .../composite/graph``: independent graphs, each all-or-none."""
    _version(request)
    body = await read_json(request)
    graphs = body.get("graphs") if isinstance(body, dict) else None
    if not isinstance(graphs, list) or not graphs:
        raise SalesforceApiError("JSON_PARSER_ERROR", "The request body must contain a non-empty list: graphs",
                                 fields=["graphs"])
    if len(graphs) > MAX_GRAPHS:
        raise SalesforceApiError("LIMIT_EXCEEDED", f"A graph request can contain at most {MAX_GRAPHS} graphs")
    seen: set[str] = set()
    prepared = []
    for item in graphs:
        graph_id = item.get("graphId") if isinstance(item, dict) else None
        if not isinstance(graph_id, str) or not graph_id or graph_id in seen:
            raise SalesforceApiError("INVALID_INPUT", f"Every graph needs a unique graphId: {graph_id!r}",
                                     fields=["graphId"])
        seen.add(graph_id)
        subrequests = _subrequests(item, "compositeRequest", MAX_GRAPH_NODES, "graph")
        _check_reference_ids(subrequests)
        prepared.append((graph_id, subrequests))
    results = []
    for graph_id, subrequests in prepared:
        items, ok = await run_composite(request, subrequests, True)
        results.append({"graphId": graph_id, "graphResponse": {"compositeResponse": items}, "isSuccessful": ok})
    return json_response({"graphs": results})


def _batch_url(url: str) -> str:
    return url if url.startswith("/services/") else "/services/data/" + url.lstrip("/")


async def batch(request: web.Request) -> web.Response:
    """``POST .../composite/batch``: up to 25 independent subrequests (each its own transaction)."""
    _version(request)
    body = await read_json(request)
    subrequests = _subrequests(body, "batchRequests", MAX_SUBREQUESTS, "batch")
    halt_on_error = _bool(body, "haltOnError")
    results: list[dict[str, Any]] = []
    halted = False
    for sub in subrequests:
        if halted:
            results.append({"statusCode": 412, "result": [
                {"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}]})
            continue
        response = await dispatch(request, sub["method"], _batch_url(sub["url"]), sub.get("richInput"))
        results.append({"statusCode": response.status, "result": response.body})
        halted = halt_on_error and not response.ok
    has_errors = any(r["statusCode"] >= 400 for r in results)
    return json_response({"hasErrors": has_errors, "results": results})


# -- sObject Tree -----------------------------------------------------------------------------


def _flatten(store: Store, sobject: str, records: Any, depth: int,
             out: list[tuple[str, str, dict[str, Any], int | None, str | None]], parent: int | None,
             parent_field: str | None) -> None:
    """Pre-order list of (type, referenceId, values, parent index, field pointing at the parent)."""
    if not isinstance(records, list):
        raise SalesforceApiError("JSON_PARSER_ERROR", "records must be a list", fields=["records"])
    if depth > MAX_TREE_DEPTH:
        raise SalesforceApiError("INVALID_INPUT", f"A tree can be at most {MAX_TREE_DEPTH} levels deep")
    obj = store.metadata.require(sobject)
    for record in records:
        attributes = record.get("attributes") if isinstance(record, dict) else None
        if not isinstance(attributes, dict) or not attributes.get("referenceId"):
            raise SalesforceApiError("INVALID_INPUT", "Every record needs attributes with type and referenceId",
                                     fields=["attributes"])
        if str(attributes.get("type", "")).lower() != obj.name.lower():
            raise SalesforceApiError("INVALID_INPUT", f"Record type {attributes.get('type')!r} does not match "
                                                      f"{obj.name}", fields=["attributes"])
        values: dict[str, Any] = {}
        children: list[tuple[str, str, Any]] = []
        for key, value in record.items():
            if key == "attributes":
                continue
            rel = obj.child(key) if isinstance(value, dict) else None
            if rel is not None:
                children.append((rel.child_sobject, rel.field, value.get("records")))
            else:
                values[key] = value
        index = len(out)
        out.append((obj.name, str(attributes["referenceId"]), values, parent, parent_field))
        if len(out) > MAX_TREE_RECORDS:
            raise too_many(MAX_TREE_RECORDS)
        for child_type, child_field, child_records in children:
            _flatten(store, child_type, child_records, depth + 1, out, index, child_field)


async def tree(request: web.Request) -> web.Response:
    """``POST .../composite/tree/{sobject}``: a forest of up to 200 records, created all or nothing."""
    _version(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise SalesforceApiError("JSON_PARSER_ERROR", "The request body must be an object with records")
    store = state_of(request).store
    flat: list[tuple[str, str, dict[str, Any], int | None, str | None]] = []
    _flatten(store, request.match_info["sobject"], body.get("records"), 1, flat, None, None)
    refs = [ref for _, ref, _, _, _ in flat]
    duplicate = next((r for r in refs if refs.count(r) > 1), None)
    if duplicate is not None:
        raise SalesforceApiError("INVALID_INPUT", f"Duplicate ReferenceId provided in the request: {duplicate}")
    user_id = session_of(request).user_id
    created: list[str] = []
    errors: list[dict[str, Any]] = []
    try:
        with store.transaction():
            for sobject, ref, values, parent, parent_field in flat:
                if parent is not None and parent_field is not None:
                    values = {**values, parent_field: created[parent]}
                try:
                    created.append(store.create(sobject, values, user_id=user_id))
                except SalesforceApiError as error:
                    errors.append({"referenceId": ref, "errors": [error_item(error)]})
                    raise _RollBack from None
    except _RollBack:
        return json_response({"hasErrors": True, "results": errors}, status=400)
    results = [{"referenceId": ref, "id": record_id} for ref, record_id in zip(refs, created)]
    return json_response({"hasErrors": False, "results": results}, status=201)
