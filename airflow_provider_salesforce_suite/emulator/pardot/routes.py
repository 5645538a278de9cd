"""Routes of the Pardot API (``/api/v5/objects/...``, ``/api/v5/imports``, ``/api/v5/exports``,
``/api/{object}/version/4/do/{operation}``) and its ``/__emulator__/pardot`` knobs.

Requests carry an emulator OAuth token and the ``Pardot-Business-Unit-Id`` header (one of
``EmulatorConfig.pardot_business_unit_ids``, default ``0Uv000000000001AAA``). Errors are Pardot's:
v5 ``{"code", "message"}``, v4 ``{"@attributes": {"stat": "fail", "err_code"}, "err"}``.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..auth import bearer_session
from ..errors import SalesforceApiError
from ..web import ApiSurface, add_route_table, attach_service, base_url, json_response, read_json, register_surface
from ..wire import COUNTED_HEADERS, CSV
from ..wire import reply as wire_reply
from . import codes
from .data import PardotData, pardot_error, project
from .jobs import EXPORT_PROCEDURES, JobRunner, PardotSettings
from ...core.pardot_objects import OBJECTS, V4_OBJECTS, PardotObjectSpec

if TYPE_CHECKING:
    from ..sessions import Session
    from ..state import EmulatorState

PREFIX = "/api"
DEFAULT_BUSINESS_UNIT_ID = "0Uv000000000001AAA"
BUSINESS_UNIT_HEADER = "Pardot-Business-Unit-Id"
PARDOT_KEY: web.AppKey[PardotService] = web.AppKey("pardot_service")
_MAX_LIMIT = 1000
# Salesforce-side errors the shared middlewares raise, in Pardot's numbering.
_CODES = {"INVALID_SESSION_ID": 184, "REQUEST_LIMIT_EXCEEDED": 122, "NOT_FOUND": 404, "METHOD_NOT_ALLOWED": 405}


class PardotService:
    """The Pardot data, jobs and knobs of one emulator."""

    def __init__(self, state: EmulatorState) -> None:
        self.business_unit_ids = set(getattr(state.config, "pardot_business_unit_ids", None)
                                     or [DEFAULT_BUSINESS_UNIT_ID])
        self.data = PardotData()
        self.settings = PardotSettings()
        self.jobs = JobRunner(self.data, self.settings)

    def reset(self) -> None:
        self.data.reset()
        self.jobs.reset()
        self.settings.daily_quota, self.settings.used, self.settings.fail_next_job = None, 0, False


def service_of(request: web.Request) -> PardotService:
    return request.app[PARDOT_KEY]


def render_pardot_error(request: web.Request, error: SalesforceApiError) -> web.Response:
    """Pardot's error bodies: v4 when the path is a v4 operation, else v5."""
    code = _CODES.get(error.error_code)
    if code is None:
        try:
            code = int(error.error_code.removeprefix("PARDOT_"))
        except ValueError:
            code = 1
    if "/version/4/do/" in request.path:
        body: dict[str, Any] = {"@attributes": {"stat": "fail", "version": 1.0, "err_code": code}, "err": error.message}
    else:
        body = {"code": code, "message": error.message}
    return json_response(body, status=error.status)


async def pardot_session(request: web.Request) -> Session:
    """The token (the shared OAuth sessions), then the Business Unit header, then the quota."""
    session = await bearer_session(request)
    service = service_of(request)
    business_unit = request.headers.get(BUSINESS_UNIT_HEADER, "").strip()
    # Pardot's own codes, not 401: the token is fine, so a client must not re-authenticate.
    if not business_unit:
        raise pardot_error(181, "A required header is missing: Pardot-Business-Unit-Id header not found on request.")
    if business_unit not in service.business_unit_ids:
        raise pardot_error(201, "Business Unit specified in Pardot-Business-Unit-Id header not found or inactive.",
                           status=403)
    quota = service.settings.daily_quota
    if quota is not None:
        if service.settings.used >= quota:
            raise pardot_error(122, "Daily API rate limit met.", status=429)
        service.settings.used += 1
    return session


# -- v5 objects ----------------------------------------------------------------------------------

def _spec(request: web.Request, operation: str) -> PardotObjectSpec:
    spec = OBJECTS.get(request.match_info["object"])
    if spec is None:
        raise pardot_error(404, f"Unknown object {request.match_info['object']!r}", status=404)
    if operation not in spec.operations:
        raise pardot_error(405, f"The {operation} operation is not allowed on {spec.path}", status=405)
    return spec


def _fields(request: web.Request, spec: PardotObjectSpec, *, required: bool = True) -> list[str]:
    raw = request.query.get("fields", "")
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names:
        if required:
            raise pardot_error(codes.MISSING_REQUIRED_PARAMETER, "The fields parameter is required: name the fields to return")
        return ["id"]
    PardotData.check_fields(spec, names)
    return names


def _record_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise pardot_error(codes.INVALID_ID, f"Invalid ID: {request.match_info['id']!r}") from None


def _token(last_id: int, query: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id, "query": query}).encode()).decode()


def _untoken(token: str) -> tuple[int, dict[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["after"]), dict(data["query"])
    except (ValueError, KeyError, TypeError):
        raise pardot_error(codes.INVALID_PAGE_TOKEN, "Page token is invalid.") from None


async def list_records(request: web.Request) -> web.Response:
    spec = _spec(request, "read")
    query = dict(request.query)
    after = 0
    if "nextPageToken" in query:
        after, query = _untoken(query["nextPageToken"])
    fields = _fields(request.clone(rel_url=request.rel_url.with_query(query)), spec)
    try:
        limit = int(query.get("limit", 200))
    except ValueError:
        raise pardot_error(codes.INVALID_LIMIT, "limit must be an integer") from None
    if not 1 <= limit <= _MAX_LIMIT:
        raise pardot_error(codes.INVALID_LIMIT, f"limit must be between 1 and {_MAX_LIMIT}")
    after = max(after, int(query.get("idGreaterThan", 0) or 0))
    equals = {k: v for k, v in query.items() if k not in ("fields", "limit", "idGreaterThan", "updatedAtAfter",
                                                           "orderBy", "nextPageToken")}
    PardotData.check_fields(spec, list(equals))
    page = service_of(request).data.select(spec, after_id=after, limit=limit + 1, equals=equals,
                                           updated_after=query.get("updatedAtAfter"))
    body: dict[str, Any] = {"values": [project(r, fields) for r in page[:limit]], "nextPageToken": None,
                            "nextPageUrl": None}
    if len(page) > limit:
        token = _token(page[limit - 1]["id"], query)
        body["nextPageToken"] = token
        body["nextPageUrl"] = f"{base_url(request)}{request.path}?nextPageToken={token}"
    return json_response(body)


async def create_record(request: web.Request) -> web.Response:
    spec = _spec(request, "create")
    fields = _fields(request, spec, required=False)
    record = service_of(request).data.create(spec, await read_json(request))
    return json_response(project(record, fields), status=201)


async def read_record(request: web.Request) -> web.Response:
    spec = _spec(request, "read")
    return json_response(project(service_of(request).data.get(spec, _record_id(request)), _fields(request, spec)))


async def update_record(request: web.Request) -> web.Response:
    spec = _spec(request, "update")
    fields = _fields(request, spec, required=False)
    record = service_of(request).data.update(spec, _record_id(request), await read_json(request))
    return json_response(project(record, fields))


async def delete_record(request: web.Request) -> web.Response:
    spec = _spec(request, "delete")
    service_of(request).data.delete(spec, _record_id(request))
    return web.Response(status=204)


async def upsert_latest_by_email(request: web.Request) -> web.Response:
    spec = OBJECTS["prospects"]
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("prospect"), dict) or not body.get("matchEmail"):
        raise pardot_error(codes.MISSING_REQUIRED_PROPERTY, "The body needs matchEmail and a prospect object")
    fields = body.get("fields") or ["id"]
    PardotData.check_fields(spec, fields)
    record, _ = service_of(request).data.upsert_by_email({**body["prospect"], "email": body["matchEmail"]})
    return json_response(project(record, fields))


# -- imports and exports ---------------------------------------------------------------------------

def _part_bytes(value: Any) -> bytes | None:
    # aiohttp gives a form part as str, bytearray (typed, no filename) or FileField (a file).
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return value.file.read()


async def _multipart(request: web.Request) -> tuple[dict[str, Any], bytes | None]:
    """The ``input`` JSON part and the ``importFile`` part of a multipart body (or a JSON body)."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        raw = _part_bytes(form.get("input"))
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            raise pardot_error(codes.INVALID_JSON, "The input part must be JSON") from None
        return payload, _part_bytes(form.get("importFile"))
    return (await read_json(request) if request.can_read_body else {}), None


async def create_import(request: web.Request) -> web.Response:
    payload, content = await _multipart(request)
    operation, obj = payload.get("operation", "Upsert"), payload.get("object", "Prospect")
    if operation not in ("Create", "Upsert") or obj != "Prospect":
        raise pardot_error(codes.INVALID_PROPERTY, "Imports support object Prospect with operation Create or Upsert")
    service = service_of(request)
    job = service.jobs.new("import", operation=operation, object=obj)
    if content:
        job.batches.append(content)
    if payload.get("state") == "Ready":
        service.jobs.submit(job)
    return json_response(job.to_json(base_url(request)), status=201)


def _job(request: web.Request, kind: str):
    try:
        job_id = int(request.match_info["id"])
    except ValueError:
        raise pardot_error(codes.INVALID_ID, f"Invalid ID: {request.match_info['id']!r}") from None
    return service_of(request).jobs.get(kind, job_id)


async def get_import(request: web.Request) -> web.Response:
    return json_response(_job(request, "import").to_json(base_url(request)))


async def update_import(request: web.Request) -> web.Response:
    job = _job(request, "import")
    body = await read_json(request)
    if body.get("state") != "Ready":
        raise pardot_error(codes.INVALID_PROPERTY, "Only state Ready may be set on an import")
    if job.state != "Open":
        raise pardot_error(codes.IMPORT_NOT_OPEN, f"Import {job.id} is {job.state}, not Open")
    if not job.batches:
        raise pardot_error(codes.IMPORT_HAS_NO_DATA, f"Import {job.id} has no batch to process")
    service_of(request).jobs.submit(job)
    return json_response(job.to_json(base_url(request)))


async def add_batch(request: web.Request) -> web.Response:
    job = _job(request, "import")
    if job.state != "Open":
        raise pardot_error(codes.IMPORT_STATE, f"Import {job.id} is {job.state}: batches go to Open imports only")
    _, content = await _multipart(request)
    if not content:
        raise pardot_error(codes.NO_FILE, "The importFile part is missing")
    job.batches.append(content)
    return web.Response(status=204)


async def import_errors(request: web.Request) -> web.Response:
    job = _job(request, "import")
    if job.state != "Complete":
        raise pardot_error(codes.IMPORT_STATE, f"Import {job.id} is {job.state}: errors are ready when it is Complete")
    return wire_reply(service_of(request).jobs.errors_csv(job), CSV)


async def create_export(request: web.Request) -> web.Response:
    body = await read_json(request)
    procedure = body.get("procedure") if isinstance(body, dict) else None
    if not isinstance(procedure, dict) or procedure.get("name") not in EXPORT_PROCEDURES:
        raise pardot_error(codes.UNKNOWN_PROCEDURE, f"procedure.name must be one of {', '.join(sorted(EXPORT_PROCEDURES))}")
    fields = body.get("fields") or ["id"]
    PardotData.check_fields(OBJECTS[EXPORT_PROCEDURES[procedure["name"]]], fields)
    job = service_of(request).jobs.new("export", fields=list(fields), procedure=procedure)
    return json_response(job.to_json(base_url(request)), status=201)


async def get_export(request: web.Request) -> web.Response:
    return json_response(_job(request, "export").to_json(base_url(request)))


async def export_result(request: web.Request) -> web.Response:
    job = _job(request, "export")
    index = int(request.match_info["n"])
    if job.state != "Complete" or index >= len(job.results):
        raise pardot_error(404, f"Export {job.id} has no result {index}", status=404)
    return wire_reply(job.results[index], CSV)


# -- v4 ------------------------------------------------------------------------------------------------

def _v4_ok(**body: Any) -> web.Response:
    return json_response({"@attributes": {"stat": "ok", "version": 1}, **body})


async def v4_operation(request: web.Request) -> web.Response:
    obj, operation = request.match_info["object"], request.match_info["operation"]
    spec = V4_OBJECTS.get(obj)
    if spec is None:
        raise pardot_error(404, f"Unknown v4 object {obj!r}", status=404)
    params = dict(request.query)
    if request.can_read_body:
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    data = service_of(request).data
    if operation == "query":
        limit = min(int(params.get("limit", 200)), 200)
        offset = int(params.get("offset", 0))
        rows = data.select(spec, after_id=int(params.get("id_greater_than", 0)), limit=limit, offset=offset,
                           updated_after=params.get("updated_after"))
        return _v4_ok(result={"total_results": data.count(spec), obj: rows})
    if obj == "prospect" and operation in ("batchCreate", "batchUpdate"):
        try:
            prospects = json.loads(params.get("prospects", ""))["prospects"]
        except (ValueError, KeyError, TypeError):
            raise pardot_error(codes.INVALID_JSON_OR_XML, "prospects must be JSON: {\"prospects\": [...]}") from None
        errors: dict[str, str] = {}
        for index, values in enumerate(prospects):
            try:
                values = dict(values)
                if operation == "batchCreate":
                    data.create(spec, values)
                else:
                    record_id = values.pop("id", None)
                    target = data.get(spec, int(record_id)) if record_id else data.latest_by_email(values.get("email", ""))
                    if target is None:
                        raise pardot_error(codes.INVALID_PROSPECT_EMAIL, "Invalid prospect email address")
                    values.pop("email", None) if not record_id else None
                    data.update(spec, target["id"], values)
            except SalesforceApiError as exc:
                errors[str(index)] = exc.message
        return _v4_ok(**({"errors": errors} if errors else {}))
    raise pardot_error(codes.INVALID_ACTION, f"Invalid action {operation!r} for {obj}", status=400)


# -- admin -----------------------------------------------------------------------------------------------

async def pardot_settings(request: web.Request) -> web.Response:
    """``GET|POST /__emulator__/pardot``: ``{"job_seconds": 0.3, "daily_quota": 10, "fail_next_job": true,
    "hold_jobs": true}`` (``daily_quota`` null: unlimited; ``hold_jobs`` keeps submitted jobs Processing
    until it is set false again)."""
    settings = service_of(request).settings
    if request.method == "POST":
        body = await read_json(request) if request.can_read_body else {}
        if "job_seconds" in body:
            settings.job_seconds = float(body["job_seconds"])
        if "daily_quota" in body:
            settings.daily_quota = None if body["daily_quota"] is None else int(body["daily_quota"])
            settings.used = 0
        if "fail_next_job" in body:
            settings.fail_next_job = bool(body["fail_next_job"])
        if "hold_jobs" in body:
            service_of(request).jobs.job_hold.set(bool(body["hold_jobs"]))
    return json_response({**settings.to_json(), "hold_jobs": service_of(request).jobs.job_hold.held})


async def seed_records(request: web.Request) -> web.Response:
    """``POST /__emulator__/pardot/seed {"object": "visitor-activities", "records": [...]}``: add records,
    including to objects the API only reads (visitor activities, users, visits ...)."""
    body = await read_json(request)
    spec = OBJECTS.get(body.get("object")) if isinstance(body, dict) else None
    if spec is None or not isinstance(body.get("records"), list):
        raise SalesforceApiError("INVALID_INPUT", f"object must be one of {', '.join(sorted(OBJECTS))}; records a list")
    data = service_of(request).data
    return json_response({"ids": [data.create(spec, dict(r))["id"] for r in body["records"]]}, status=201)


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the Pardot routes and register the Pardot surface.

    :param app: the emulator application.
    :param state: the emulator state.
    """
    service = PardotService(state)
    attach_service(app, state, PARDOT_KEY, service, close=service.data.close,
                   admin=("/__emulator__/pardot", pardot_settings))
    router = app.router
    table: list[tuple[str, dict]] = [
        ("/v5/objects/prospects/do/upsertLatestByEmail", {"POST": upsert_latest_by_email}),
        ("/v5/objects/{object}", {"GET": list_records, "POST": create_record}),
        ("/v5/objects/{object}/{id}", {"GET": read_record, "PATCH": update_record, "DELETE": delete_record}),
        ("/v5/imports", {"POST": create_import}),
        ("/v5/imports/{id}", {"GET": get_import, "PATCH": update_import}),
        ("/v5/imports/{id}/batches", {"POST": add_batch}),
        ("/v5/imports/{id}/errors", {"GET": import_errors}),
        ("/v5/exports", {"POST": create_export}),
        ("/v5/exports/{id}", {"GET": get_export}),
        ("/v5/exports/{id}/results/{n:[0-9]+}", {"GET": export_result}),
        ("/{object}/version/4/do/{operation}", {"GET": v4_operation, "POST": v4_operation}),
    ]
    add_route_table(app, PREFIX, table)
    router.add_post("/__emulator__/pardot/seed", seed_records)
    # /api/v5 plus one prefix per v4 object: /api itself is shared with other APIs (Desk's /api/v2).
    for prefix in (f"{PREFIX}/v5", *(f"{PREFIX}/{name}" for name in V4_OBJECTS)):
        register_surface(app, ApiSurface(name="pardot", prefix=prefix, render_error=render_pardot_error,
                                         authenticate=pardot_session, counts_api_usage=True,
                                         wire=COUNTED_HEADERS))
