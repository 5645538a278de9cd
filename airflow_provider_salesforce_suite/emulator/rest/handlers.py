"""REST API handlers: translate HTTP to store calls and store results to Salesforce's JSON.

Store calls are synchronous: the SQLite store answers in well under a millisecond for the
record counts an emulator holds, so an executor hop would cost more than it saves.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import SalesforceApiError
from ..limits import limits_body
from ..web import base_url, json_response, no_content, read_json, session_of, state_of
from ..wire import record_location
from .versions import parse_version, version_number, versions_body

#: Salesforce's query batch size bounds (``Sforce-Query-Options: batchSize=N``).
MIN_BATCH_SIZE = 200
MAX_BATCH_SIZE = 2000
#: From this version an upsert that updates answers 200 with a body instead of 204.
UPSERT_UPDATE_BODY_SINCE = 46.0


def _version(request: web.Request) -> str:
    return parse_version(request.match_info["version"])


async def _record_body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        kind = "START_ARRAY" if isinstance(body, list) else "VALUE_STRING"
        raise SalesforceApiError(
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of SObject from {kind} value at [line:1, column:1]",
        )
    # Clients (simple-salesforce among them) echo "attributes" back; Salesforce ignores it.
    body.pop("attributes", None)
    return body


def _fields_param(request: web.Request) -> list[str] | None:
    raw = request.query.get("fields")
    if raw is None:
        return None
    return [f.strip() for f in raw.split(",") if f.strip()]


# -- versions and resources -----------------------------------------------------------------


async def versions(request: web.Request) -> web.Response:
    """``GET /services/data/``: the versions served (no session needed)."""
    return json_response(versions_body())


async def resources(request: web.Request) -> web.Response:
    """``GET /services/data/vXX.X/``: the resources of one version."""
    version = _version(request)
    root = f"/services/data/v{version}"
    session = session_of(request)
    names = [
        "tooling", "metadata", "eclair", "folders", "prechatForms", "jobs", "recent", "connect",
        "licensing", "limits", "process", "async-queries", "query", "quickActions", "queryAll",
        "compactLayouts", "sobjects", "actions", "support", "analytics", "composite",
        "parameterizedSearch", "search", "theme", "nouns", "event", "chatter", "wave", "tabs",
        "appMenu", "ui-api", "consent", "dedupe", "scheduling", "graphql", "localizedvalue",
    ]
    body: dict[str, str] = {name: f"{root}/{name}" for name in names}
    state = state_of(request)
    body["identity"] = f"{base_url(request)}/id/{state.org_id}/{session.user_id}"
    return json_response(dict(sorted(body.items())))


async def limits(request: web.Request) -> web.Response:
    """``GET /services/data/vXX.X/limits/``."""
    _version(request)
    state = state_of(request)
    apps = [(app.name, state.api_usage.used(app.name), state.app_limit(app)) for app in state.config.connected_apps]
    return json_response(limits_body(state.config.daily_api_limit, state.api_usage.used(), apps))


# -- sObjects ---------------------------------------------------------------------------------


async def describe_global(request: web.Request) -> web.Response:
    """``GET .../sobjects/``."""
    return json_response(state_of(request).store.describe_global(api_version=_version(request)))


async def sobject_info(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/``: basic info and recent items."""
    store = state_of(request).store
    return json_response(store.sobject_basic_info(request.match_info["sobject"], api_version=_version(request)))


async def describe(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/describe/``."""
    store = state_of(request).store
    return json_response(store.describe(request.match_info["sobject"], api_version=_version(request)))


async def create(request: web.Request) -> web.Response:
    """``POST .../sobjects/{sobject}/``: 201 ``{"id","success":true,"errors":[]}``."""
    _version(request)
    values = await _record_body(request)
    record_id = state_of(request).store.create(
        request.match_info["sobject"], values, user_id=session_of(request).user_id
    )
    return json_response({"id": record_id, "success": True, "errors": []}, status=201,
                         headers={"Location": record_location(request.path, record_id)})


async def retrieve(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/{id}?fields=a,b``."""
    store = state_of(request).store
    record = store.retrieve(
        request.match_info["sobject"], request.match_info["record_id"], _fields_param(request),
        api_version=_version(request),
    )
    return json_response(record)


async def update(request: web.Request) -> web.Response:
    """``PATCH .../sobjects/{sobject}/{id}``: 204."""
    _version(request)
    values = await _record_body(request)
    state_of(request).store.update(
        request.match_info["sobject"], request.match_info["record_id"], values,
        user_id=session_of(request).user_id,
    )
    return no_content()


async def delete(request: web.Request) -> web.Response:
    """``DELETE .../sobjects/{sobject}/{id}``: 204."""
    _version(request)
    state_of(request).store.delete(request.match_info["sobject"], request.match_info["record_id"])
    return no_content()


async def retrieve_by_external_id(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/{field}/{value}``."""
    store = state_of(request).store
    record = store.retrieve_by_external_id(
        request.match_info["sobject"], request.match_info["field"], request.match_info["value"],
        _fields_param(request), api_version=_version(request),
    )
    return json_response(record)


async def upsert(request: web.Request) -> web.Response:
    """``PATCH .../sobjects/{sobject}/{field}/{value}``.

    201 with ``created: true`` on insert; on update 200 with ``created: false`` from API 46.0,
    204 before. Several matches: 300 with the matching records' URLs (rendered from the error).
    """
    version = _version(request)
    values = await _record_body(request)
    record_id, created = state_of(request).store.upsert(
        request.match_info["sobject"], request.match_info["field"], request.match_info["value"],
        values, user_id=session_of(request).user_id, api_version=version,
    )
    body = {"id": record_id, "success": True, "errors": [], "created": created}
    if created:
        return json_response(body, status=201)
    if version_number(version) >= UPSERT_UPDATE_BODY_SINCE:
        return json_response(body, status=200)
    return no_content()


async def delete_by_external_id(request: web.Request) -> web.Response:
    """``DELETE .../sobjects/{sobject}/{field}/{value}``: 204."""
    version = _version(request)
    store = state_of(request).store
    sobject = request.match_info["sobject"]
    record = store.retrieve_by_external_id(
        sobject, request.match_info["field"], request.match_info["value"], ["Id"], api_version=version
    )
    store.delete(sobject, record["Id"])
    return no_content()


# -- query ------------------------------------------------------------------------------------


def _batch_size(request: web.Request) -> int:
    # "Sforce-Query-Options: batchSize=500"; Salesforce treats it as a hint within 200..2000.
    options = request.headers.get("Sforce-Query-Options", "")
    for option in options.split(","):
        key, _, value = option.strip().partition("=")
        if key.strip().lower() == "batchsize":
            try:
                return max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, int(value.strip())))
            except ValueError:
                break
    return MAX_BATCH_SIZE


async def _query(request: web.Request, include_deleted: bool) -> web.Response:
    version = _version(request)
    soql = request.query.get("q")
    if not soql or not soql.strip():
        raise SalesforceApiError("MALFORMED_QUERY", "A query string has to be specified", status=400)
    result = state_of(request).store.query(
        soql, include_deleted=include_deleted, batch_size=_batch_size(request), api_version=version
    )
    return json_response(result)


async def query(request: web.Request) -> web.Response:
    """``GET .../query/?q=SOQL``."""
    return await _query(request, include_deleted=False)


async def query_all(request: web.Request) -> web.Response:
    """``GET .../queryAll/?q=SOQL`` (deleted and archived records too)."""
    return await _query(request, include_deleted=True)


async def query_more(request: web.Request) -> web.Response:
    """``GET .../query/{locator}`` and ``.../queryAll/{locator}``: the next batch."""
    result = state_of(request).store.query_more(request.match_info["locator"], api_version=_version(request))
    return json_response(result)
