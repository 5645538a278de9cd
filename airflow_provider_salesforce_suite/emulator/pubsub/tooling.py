"""The Tooling API's ``ManagedEventSubscription`` object, the way Salesforce defines managed
subscriptions (and the way clients such as the npm ``salesforce-pubsub-api-client`` look them up):

* ``POST /services/data/vXX.X/tooling/sobjects/ManagedEventSubscription``
  ``{"FullName": "Orders_Sub", "Metadata": {"label", "topicName", "defaultReplay", "state", "errorRecoveryReplay"}}``
* ``GET|PATCH|DELETE .../tooling/sobjects/ManagedEventSubscription/{id}`` (PATCH ``{"Metadata": {"state": "STOP"}}``)
* ``GET .../tooling/query?q=SELECT Id, DeveloperName, Metadata FROM ManagedEventSubscription
  [WHERE Id = '...' | DeveloperName = '...'] [LIMIT n]`` (only this object: the rest of the Tooling
  API is not emulated).

Served on the REST surface (bearer session, REST error format, API usage counted).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..errors import SalesforceApiError
from ..rest.versions import parse_version
from ..web import json_response, read_json
from .managed import ManagedSubscription
from .service import PUBSUB_KEY, PubSubService
from .wire import PubSubFault

SOBJECT = "ManagedEventSubscription"
_FIELDS = ("Id", "DeveloperName", "MasterLabel", "Metadata")
_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<fields>[\w\s,]+?)\s+FROM\s+(?P<sobject>\w+)"
    r"(?:\s+WHERE\s+(?P<field>\w+)\s*=\s*'(?P<value>(?:[^'\\]|\\.)*)')?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", re.IGNORECASE)


def _service(request: web.Request) -> PubSubService:
    parse_version(request.match_info["version"])  # an API version not served is a 404, as on REST
    return request.app[PUBSUB_KEY]


def _record(request: web.Request, sub: ManagedSubscription, fields: tuple[str, ...] = _FIELDS) -> dict[str, Any]:
    url = f"/services/data/{request.match_info['version']}/tooling/sobjects/{SOBJECT}/{sub.id}"
    values = {"Id": sub.id, "DeveloperName": sub.developer_name, "MasterLabel": sub.label or sub.developer_name,
              "Metadata": sub.metadata()}
    return {"attributes": {"type": SOBJECT, "url": url}, **{f: values[f] for f in fields}}


def _find(request: web.Request) -> ManagedSubscription:
    sub = _service(request).managed.get(request.match_info["record_id"])
    if sub is None or not sub.id.startswith(request.match_info["record_id"][:15]):
        raise SalesforceApiError("NOT_FOUND", "The requested resource does not exist", status=404)
    return sub


async def create(request: web.Request) -> web.Response:
    """``POST .../tooling/sobjects/ManagedEventSubscription``."""
    body = await read_json(request)
    metadata = body.get("Metadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict) or not isinstance(body.get("FullName"), str):
        raise SalesforceApiError("REQUIRED_FIELD_MISSING", "Required fields are missing: [FullName, Metadata]",
                                 fields=["FullName", "Metadata"])
    service = _service(request)
    topic = str(metadata.get("topicName") or "")
    try:
        service.catalog.topic(topic)
        sub = service.managed.create(body["FullName"], topic, state=str(metadata.get("state", "RUN")),
                                     default_replay=str(metadata.get("defaultReplay", "LATEST")),
                                     label=str(metadata.get("label") or ""),
                                     error_recovery_replay=str(metadata.get("errorRecoveryReplay", "LATEST")))
    except PubSubFault as fault:
        raise SalesforceApiError("FIELD_INTEGRITY_EXCEPTION", f"topicName: {fault.message}",
                                 fields=["Metadata"]) from None
    except ValueError as exc:
        raise SalesforceApiError("FIELD_INTEGRITY_EXCEPTION", str(exc), fields=["Metadata"]) from None
    return json_response({"id": sub.id, "success": True, "errors": [], "warnings": [], "infos": []}, status=201)


async def retrieve(request: web.Request) -> web.Response:
    """``GET .../tooling/sobjects/ManagedEventSubscription/{id}``."""
    return json_response(_record(request, _find(request)))


async def update(request: web.Request) -> web.Response:
    """``PATCH .../tooling/sobjects/ManagedEventSubscription/{id}`` ``{"Metadata": {"state": "STOP"}}``."""
    sub = _find(request)
    body = await read_json(request)
    metadata = body.get("Metadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict):
        raise SalesforceApiError("REQUIRED_FIELD_MISSING", "Required fields are missing: [Metadata]",
                                 fields=["Metadata"])
    state = metadata.get("state", sub.state)
    replay = metadata.get("defaultReplay", sub.default_replay)
    if state not in ("RUN", "STOP") or replay not in ("LATEST", "EARLIEST"):
        raise SalesforceApiError("FIELD_INTEGRITY_EXCEPTION", "state must be RUN or STOP and defaultReplay "
                                 "LATEST or EARLIEST", fields=["Metadata"])
    sub.state, sub.default_replay = state, replay
    sub.label = str(metadata.get("label") or sub.label)
    return web.Response(status=204)


async def delete(request: web.Request) -> web.Response:
    """``DELETE .../tooling/sobjects/ManagedEventSubscription/{id}``."""
    _service(request).managed.delete(_find(request))
    return web.Response(status=204)


async def query(request: web.Request) -> web.Response:
    """``GET .../tooling/query?q=...`` for ManagedEventSubscription."""
    soql = request.query.get("q", "")
    match = _QUERY.match(soql)
    if match is None:
        raise SalesforceApiError("MALFORMED_QUERY", f"The Tooling API here only answers SELECT ... FROM {SOBJECT} "
                                 f"[WHERE Id|DeveloperName = '...'] [LIMIT n], got: {soql or '(empty)'}")
    if match["sobject"].lower() != SOBJECT.lower():
        raise SalesforceApiError("INVALID_TYPE", f"sObject type '{match['sobject']}' is not supported.")
    by_lower = {f.lower(): f for f in _FIELDS}
    fields = tuple(by_lower.get(f.strip().lower(), f.strip()) for f in match["fields"].split(","))
    unknown = [f for f in fields if f not in _FIELDS]
    if unknown:
        raise SalesforceApiError("INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{SOBJECT}'.")
    subs = _service(request).managed.all()
    if match["field"]:
        field, value = by_lower.get(match["field"].lower()), match["value"].replace("\\'", "'")
        if field not in ("Id", "DeveloperName"):
            raise SalesforceApiError("INVALID_FIELD", f"Filtering on '{match['field']}' is not supported here.")
        subs = [s for s in subs if (value in (s.id, s.id[:15]) if field == "Id"
                                    else value.lower() == s.developer_name.lower())]
    if match["limit"]:
        subs = subs[: int(match["limit"])]
    records = [_record(request, s, fields) for s in subs]
    return json_response({"size": len(records), "totalSize": len(records), "done": True, "queryLocator": None,
                          "entityTypeName": SOBJECT, "records": records})


def table() -> list[tuple[str, dict[str, Any]]]:
    """The routes, relative to ``/services/data/vXX.X/tooling``."""
    return [
        ("/query", {"GET": query}),
        (f"/sobjects/{SOBJECT}", {"POST": create}),
        (f"/sobjects/{SOBJECT}/{{record_id}}", {"GET": retrieve, "PATCH": update, "DELETE": delete}),
    ]
