"""Routes of the Bulk APIs: 2.0 under ``/services/data/vXX.X/jobs`` (the REST surface: Bearer
auth, REST JSON errors) and 1.0 under ``/services/async/XX.X`` (its own surface: ``X-SFDC-Session``
auth, XML/JSON ``<error>`` bodies), plus the ``/__emulator__/bulk`` knobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..web import add_route_table, attach_service, ApiSurface, json_response, read_json, register_surface
from ..wire import COUNTED_HEADERS
from . import handlers_v2 as v2
from .service import BULK_KEY, BulkService, service_of

if TYPE_CHECKING:
    from ..state import EmulatorState

_V2 = r"/services/data/{version:v[0-9]+\.[0-9]+}/jobs"
_SLASH = "{slash:/?}"
V1_PREFIX = "/services/async"


def _v2_table() -> list[tuple[str, dict]]:
    return [
        ("/ingest", {"POST": v2.create_ingest, "GET": v2.list_ingest}),
        ("/ingest/{job_id}", {"GET": v2.get_ingest, "PATCH": v2.patch_ingest, "DELETE": v2.delete_ingest}),
        ("/ingest/{job_id}/batches", {"PUT": v2.upload}),
        ("/ingest/{job_id}/successfulResults", {"GET": v2.successful_results}),
        ("/ingest/{job_id}/failedResults", {"GET": v2.failed_results}),
        ("/ingest/{job_id}/unprocessedrecords", {"GET": v2.unprocessed_records}),
        ("/query", {"POST": v2.create_query, "GET": v2.list_query}),
        ("/query/{job_id}", {"GET": v2.get_query, "PATCH": v2.patch_query, "DELETE": v2.delete_query}),
        ("/query/{job_id}/results", {"GET": v2.query_results}),
        ("/query/{job_id}/resultPages", {"GET": v2.query_result_pages}),
    ]


async def bulk_settings(request: web.Request) -> web.Response:
    """``GET|POST /__emulator__/bulk``: ``{"min_in_progress_seconds": 0.5, "fail_next_job": "msg",
    "reverse_results": true, "v1_queued_seconds": 0.5, "purge_job": "750...", "hold_jobs": true}``
    (``purge_job`` forgets a job of either API, as Salesforce does 7 days after it finished;
    ``hold_jobs`` keeps processed jobs and 1.0 batches InProgress until it is set false again)."""
    service = service_of(request)
    if request.method == "POST":
        body = await read_json(request) if request.can_read_body else {}
        if "min_in_progress_seconds" in body:
            service.settings.min_in_progress_seconds = float(body["min_in_progress_seconds"])
        if body.get("fail_next_job"):
            service.settings.fail_next.append(str(body["fail_next_job"]))
        if "reverse_results" in body:
            service.settings.reverse_results = bool(body["reverse_results"])
        if "v1_queued_seconds" in body:
            service.settings.v1_queued_seconds = float(body["v1_queued_seconds"])
        if "hold_jobs" in body:
            service.job_hold.set(bool(body["hold_jobs"]))
        if body.get("purge_job"):  # what Salesforce does 7 days after a job finished: any API, any state
            job = service.jobs.get(str(body["purge_job"]))
            if job is not None:
                service.delete_job(job)
    return json_response({**service.settings.to_json(), "hold_jobs": service.job_hold.held})


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the Bulk APIs' routes and register the Bulk 1.0 surface.

    :param app: the emulator application.
    :param state: the emulator state.
    """
    service = BulkService(state)
    attach_service(app, state, BULK_KEY, service, close=service.close, admin=("/__emulator__/bulk", bulk_settings))
    add_route_table(app, _V2, _v2_table(), _SLASH)
    v1_routes(app)


def _v1_table() -> list[tuple[str, dict]]:
    from . import handlers_v1 as v1

    return [
        ("/job", {"POST": v1.create_job}),
        ("/job/{job_id}", {"GET": v1.get_job, "POST": v1.update_job}),
        ("/job/{job_id}/batch", {"POST": v1.add_batch, "GET": v1.list_batches}),
        ("/job/{job_id}/batch/{batch_id}", {"GET": v1.get_batch}),
        ("/job/{job_id}/batch/{batch_id}/request", {"GET": v1.batch_request}),
        ("/job/{job_id}/batch/{batch_id}/result", {"GET": v1.batch_result}),
        ("/job/{job_id}/batch/{batch_id}/result/{result_id}", {"GET": v1.query_result}),
    ]


def v1_routes(app: web.Application) -> None:
    """Add the Bulk API 1.0 routes and register its surface.

    :param app: the emulator application.
    """
    from .handlers_v1 import v1_session
    from .render import render_v1_error

    add_route_table(app, V1_PREFIX + r"/{version:[0-9]+\.[0-9]+}", _v1_table(), _SLASH)
    register_surface(app, ApiSurface(name="bulk", prefix=V1_PREFIX, render_error=render_v1_error,
                                     authenticate=v1_session, counts_api_usage=True, wire=COUNTED_HEADERS))
