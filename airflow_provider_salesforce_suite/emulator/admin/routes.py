"""Routes of the control API (``/__emulator__``); no auth, served on the same loopback port."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..errors import SalesforceApiError
from ..web import ApiSurface, json_response, register_surface
from . import handlers

if TYPE_CHECKING:
    from ..state import EmulatorState

PREFIX = "/__emulator__"


def render_admin_error(request: web.Request, error: SalesforceApiError) -> web.Response:
    """The control API's own simple error format ``{"error","message"}``.

    :param request: the request.
    :param error: the error.
    """
    return json_response({"error": error.error_code, "message": error.message}, status=error.status)


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the control API's routes and register its surface (never faulted, never counted).

    :param app: the emulator application.
    :param state: the emulator state.
    """
    router = app.router
    router.add_get(PREFIX + "/health", handlers.health)
    router.add_post(PREFIX + "/reset", handlers.reset)
    router.add_post(PREFIX + "/sessions/expire", handlers.expire_sessions)
    faults = router.add_resource(PREFIX + "/faults")
    faults.add_route("POST", handlers.add_fault)
    faults.add_route("GET", handlers.list_faults)
    faults.add_route("DELETE", handlers.clear_faults)
    stats = router.add_resource(PREFIX + "/stats")
    stats.add_route("GET", handlers.stats)
    stats.add_route("DELETE", handlers.reset_stats)
    router.add_post(PREFIX + "/refresh-tokens", handlers.refresh_token)
    register_surface(app, ApiSurface(name="admin", prefix=PREFIX, render_error=render_admin_error, faultable=False))
