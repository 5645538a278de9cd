"""Routes of the Wave REST API under ``/services/data/vXX.X/wave`` (the REST surface: Bearer auth,
REST JSON errors) plus the ``/__emulator__/analytics`` knobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..web import add_route_table, attach_service, json_response, read_json
from . import handlers as h
from .service import ANALYTICS_KEY, AnalyticsService, service_of

if TYPE_CHECKING:
    from ..state import EmulatorState

_WAVE = r"/services/data/{version:v[0-9]+\.[0-9]+}/wave"
_SLASH = "{slash:/?}"
_COLLECTIONS = "{collection:datasets|dashboards|lenses|folders|dataflows|recipes|templates|annotations}"


def _table() -> list[tuple[str, dict]]:
    return [
        ("", {"GET": h.resources}),
        ("/query", {"POST": h.query}),
        ("/dataflowjobs", {"GET": h.list_jobs, "POST": h.start_job}),
        ("/dataflowjobs/{job_id}", {"GET": h.get_job, "PATCH": h.patch_job}),
        ("/{collection:datasets}/{asset_id}/versions", {"GET": h.list_versions}),
        ("/{collection:datasets}/{asset_id}/versions/{version_id}", {"GET": h.get_version}),
        ("/" + _COLLECTIONS, {"GET": h.list_assets, "POST": h.create_asset}),
        ("/" + _COLLECTIONS + "/{asset_id}", {"GET": h.get_asset, "PATCH": h.update_asset, "PUT": h.update_asset}),
    ]


async def analytics_settings(request: web.Request) -> web.Response:
    """``GET|POST /__emulator__/analytics``: ``{"min_queued_seconds", "min_running_seconds",
    "fail_next_dataflow": "message", "dataflows": [{"name", "label", "dataset", "soql"}], "hold_jobs": true}``
    (``hold_jobs`` keeps uploads and dataflow jobs InProgress/Running until it is set false again)."""
    service = service_of(request)
    if request.method == "POST":
        body = await read_json(request) if request.can_read_body else {}
        for key in ("min_queued_seconds", "min_running_seconds"):
            if key in body:
                setattr(service.settings, key, float(body[key]))
        if body.get("fail_next_dataflow"):
            service.settings.fail_next_dataflow.append(str(body["fail_next_dataflow"]))
        if "hold_jobs" in body:
            service.job_hold.set(bool(body["hold_jobs"]))
        for spec in body.get("dataflows") or []:
            service.add_dataflow(spec)
    settings = service.settings.to_json()
    settings["dataflows"] = {a.name: a.id for a in service.assets["dataflows"].values()}
    settings["hold_jobs"] = service.job_hold.held
    return json_response(settings)


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the Wave API's routes (covered by the REST surface) and the admin knobs.

    :param app: the emulator application.
    :param state: the emulator state.
    """
    service = AnalyticsService(state)
    attach_service(app, state, ANALYTICS_KEY, service, close=service.close,
                   admin=("/__emulator__/analytics", analytics_settings))

    async def start(_app: web.Application) -> None:
        import asyncio

        service.bind_loop(asyncio.get_running_loop())

    app.on_startup.append(start)
    add_route_table(app, _WAVE, _table(), _SLASH)


__all__ = ["routes", "AnalyticsService"]
