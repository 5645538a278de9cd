"""Handlers of the Wave REST API (``/services/data/vXX.X/wave/...``)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from aiohttp import web

from ..errors import SalesforceApiError
from ..web import json_response, read_json
from .assets import Asset
from .service import AnalyticsService, service_of

#: Page sizes of the list resources (Wave's default and maximum).
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 25, 200
#: Rows a SAQL query answers at most.
MAX_QUERY_ROWS = 10_000
_SORTS = {"Name": lambda a: a.label.lower(), "LastModified": lambda a: a.modified,
          "CreatedDate": lambda a: a.created, "Mru": lambda a: a.modified}


def _base(request: web.Request) -> str:
    return f"/services/data/{request.match_info['version']}/wave"


def _bad_request(message: str) -> SalesforceApiError:
    return SalesforceApiError("INVALID_INPUT", message, status=400)


async def resources(request: web.Request) -> web.Response:
    """``GET /wave``: the top-level resources."""
    base = _base(request)
    names = ("annotations", "dashboards", "dataflowjobs", "dataflows", "datasets", "folders", "lenses", "query",
             "recipes", "templates")
    return json_response({name: f"{base}/{name}" for name in names})


def _page(request: web.Request, collection: str, assets: list[Asset]) -> web.Response:
    """One page of a list resource: ``q``, ``folderId``, ``sort``, ``page``, ``pageSize``."""
    service = service_of(request)
    query = request.query
    if query.get("q"):
        needle = query["q"].lower()
        assets = [a for a in assets if needle in a.label.lower() or needle in a.name.lower()]
    if query.get("folderId"):
        folder = service.get("folders", query["folderId"]).id
        assets = [a for a in assets if a.folder_id == folder]
    sort = query.get("sort", "Name")
    if sort not in _SORTS:
        raise _bad_request(f"Invalid sort '{sort}': use one of {', '.join(_SORTS)}")
    assets = sorted(assets, key=_SORTS[sort], reverse=sort != "Name")
    try:
        size = int(query.get("pageSize", DEFAULT_PAGE_SIZE))
        start = int(base64.urlsafe_b64decode(query["page"]).decode()) if query.get("page") else 0
    except (ValueError, UnicodeDecodeError):
        raise _bad_request("Invalid page or pageSize") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _bad_request(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
    base = _base(request)
    url = f"{base}/{collection}"
    body: dict[str, Any] = {collection: [a.to_json(base, service.assets["folders"]) for a in assets[start:start + size]],
                            "totalSize": len(assets), "url": url, "nextPageUrl": None}
    if start + size < len(assets):
        params = {k: v for k, v in query.items() if k != "page"}
        params["page"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        body["nextPageUrl"] = str(request.rel_url.with_path(url).with_query(params))
    return json_response(body)


def _collection(request: web.Request) -> str:
    return request.match_info["collection"]


async def list_assets(request: web.Request) -> web.Response:
    """``GET /wave/{datasets|dashboards|lenses|folders|dataflows|recipes|templates|annotations}``."""
    collection = _collection(request)
    return _page(request, collection, list(service_of(request).assets[collection].values()))


async def get_asset(request: web.Request) -> web.Response:
    """``GET /wave/{collection}/{id}``."""
    service = service_of(request)
    asset = service.get(_collection(request), request.match_info["asset_id"])
    return json_response(_with_versions(request, service, asset))


def _with_versions(request: web.Request, service: AnalyticsService, asset: Asset) -> dict[str, Any]:
    base = _base(request)
    body = asset.to_json(base, service.assets["folders"])
    if asset.collection == "datasets":
        body["versionsUrl"] = f"{asset.url(base)}/versions"
        current = body.pop("currentVersionId", None)
        if current:
            body["currentVersionId"] = current
            body["currentVersionUrl"] = f"{asset.url(base)}/versions/{current}"
    return body


def _apply(service: AnalyticsService, asset: Asset, body: Any, *, replace: bool) -> None:
    if not isinstance(body, dict):
        raise _bad_request("The request body must be a JSON object")
    if replace and not body.get("label"):
        raise _bad_request("label is required")
    if "label" in body:
        asset.label = str(body["label"])
    if "name" in body and asset.collection in ("dashboards", "lenses", "folders"):
        asset.name = str(body["name"])
    if "description" in body:
        asset.description = str(body["description"] or "")
    if "folder" in body:
        folder = body["folder"] if isinstance(body["folder"], dict) else {"id": body["folder"]}
        asset.folder_id = service.folder_id(folder.get("id") or folder.get("name"))
    for key in ("state", "xmd", "visualizationType"):
        if key in body:
            asset.extra[key] = body[key]
    from .assets import now_iso

    asset.modified = now_iso()


async def update_asset(request: web.Request) -> web.Response:
    """``PATCH /wave/{collection}/{id}`` (datasets, dashboards, lenses, folders) and ``PUT`` (folders)."""
    service = service_of(request)
    collection = _collection(request)
    if collection not in ("datasets", "dashboards", "lenses", "folders"):
        raise SalesforceApiError("METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed", status=405)
    asset = service.get(collection, request.match_info["asset_id"])
    _apply(service, asset, await read_json(request), replace=request.method == "PUT")
    return json_response(_with_versions(request, service, asset))


async def create_asset(request: web.Request) -> web.Response:
    """``POST /wave/{dashboards|lenses|folders}``: create one (201)."""
    service = service_of(request)
    collection = _collection(request)
    if collection not in ("dashboards", "lenses", "folders"):
        raise SalesforceApiError("METHOD_NOT_ALLOWED", f"HTTP Method 'POST' not allowed for {collection}", status=405)
    body = await read_json(request)
    if not isinstance(body, dict) or not body.get("label"):
        raise _bad_request("label is required")
    prefix = {"dashboards": "0FK", "lenses": "0FK", "folders": "00l"}[collection]
    name = str(body.get("name") or "".join(c if c.isalnum() else "_" for c in body["label"]))
    asset = service.add(collection, prefix, name, str(body["label"]))
    if collection != "folders":
        asset.folder_id = service.folder_id(None)
    _apply(service, asset, body, replace=False)
    return json_response(_with_versions(request, service, asset), status=201)


async def list_versions(request: web.Request) -> web.Response:
    """``GET /wave/datasets/{id}/versions``."""
    service = service_of(request)
    dataset = service.get("datasets", request.match_info["asset_id"])
    base = _base(request)
    versions = [v.to_json(base) for v in service.versions.values() if v.dataset_id == dataset.id]
    return json_response({"url": f"{dataset.url(base)}/versions", "versions": versions})


async def get_version(request: web.Request) -> web.Response:
    """``GET /wave/datasets/{id}/versions/{versionId}``."""
    service = service_of(request)
    dataset = service.get("datasets", request.match_info["asset_id"])
    version = service.versions.get(request.match_info["version_id"])
    if version is None or version.dataset_id != dataset.id:
        raise SalesforceApiError("NOT_FOUND", "The requested resource does not exist: no dataset version with id "
                                 f"'{request.match_info['version_id']}'", status=404)
    return json_response(version.to_json(_base(request)))


async def query(request: web.Request) -> web.Response:
    """``POST /wave/query`` ``{"query": saql}``."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
        raise _bad_request("The request body must have a 'query' string")
    records, columns = service_of(request).query(body["query"], MAX_QUERY_ROWS)
    metadata = [{"columns": [{"columnName": n, "columnType": t} for n, t in columns.items()],
                 "lineage": {"type": "foreach", "projections": [{"field": {"id": n, "type": t}} for n, t in
                                                               columns.items()]}, "queryLanguage": "SAQL"}]
    return json_response({"action": "query", "responseId": uuid.uuid4().hex[:16],
                          "results": {"records": records, "metadata": metadata}, "query": body["query"],
                          "responseTime": 1})


async def list_jobs(request: web.Request) -> web.Response:
    """``GET /wave/dataflowjobs`` (``dataflowId``, ``status`` filters)."""
    service = service_of(request)
    base = _base(request)
    jobs = sorted(service.jobs.values(), key=lambda j: j.start, reverse=True)
    if request.query.get("dataflowId"):
        jobs = [j for j in jobs if j.dataflow_id == request.query["dataflowId"]]
    if request.query.get("status"):
        jobs = [j for j in jobs if j.status == request.query["status"]]
    return json_response({"dataflowJobs": [j.to_json(base) for j in jobs], "nextPageUrl": None,
                          "url": f"{base}/dataflowjobs"})


async def start_job(request: web.Request) -> web.Response:
    """``POST /wave/dataflowjobs`` ``{"dataflowId", "command": "start"}`` (201)."""
    body = await read_json(request)
    if not isinstance(body, dict) or body.get("command") != "start" or not body.get("dataflowId"):
        raise _bad_request("The request body must be {\"dataflowId\": ..., \"command\": \"start\"}")
    job = service_of(request).start_dataflow(str(body["dataflowId"]))
    return json_response(job.to_json(_base(request)), status=201)


def _job(request: web.Request) -> Any:
    service = service_of(request)
    job = service.jobs.get(request.match_info["job_id"])
    if job is None:
        raise SalesforceApiError("NOT_FOUND", "The requested resource does not exist: no dataflow job with id "
                                 f"'{request.match_info['job_id']}'", status=404)
    return job


async def get_job(request: web.Request) -> web.Response:
    """``GET /wave/dataflowjobs/{id}``."""
    return json_response(_job(request).to_json(_base(request)))


async def patch_job(request: web.Request) -> web.Response:
    """``PATCH /wave/dataflowjobs/{id}`` ``{"command": "stop"}``."""
    job = _job(request)
    body = await read_json(request)
    if not isinstance(body, dict) or body.get("command") != "stop":
        raise _bad_request("The request body must be {\"command\": \"stop\"}")
    service_of(request).stop_job(job)
    return json_response(job.to_json(_base(request)))
