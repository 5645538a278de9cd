"""Routes of the UI pages (``/lightning``, ``/analytics``): no session (a browser has none here),
never faulted, not counted as API calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..rest.render import render_rest_error
from ..web import ApiSurface, register_surface
from . import handlers

if TYPE_CHECKING:
    from ..state import EmulatorState


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the pages and register their surfaces.

    :param app: the emulator application.
    :param state: the emulator state.
    """
    app.router.add_get("/lightning/setup/AsyncApiJobStatus/page", handlers.bulk_job)
    app.router.add_get("/lightning/r/{sobject}/{record_id}/view", handlers.record)
    app.router.add_get("/analytics/dataset/{dataset_id}", handlers.analytics_dataset)
    for prefix in ("/lightning", "/analytics"):
        register_surface(app, ApiSurface(name="ui", prefix=prefix, render_error=render_rest_error, faultable=False))
