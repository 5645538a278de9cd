"""Apex REST (``/services/apexrest/...``) answered from the config's canned routes.

The emulator cannot run Apex: :attr:`EmulatorConfig.apex_rest` maps ``(urlMapping, method)`` to a
JSON response or an echo of the request body. Other paths get Salesforce's 404 ``NOT_FOUND``
"Could not find a match for URL"; a known path with another method gets 405.
"""

from __future__ import annotations

import fnmatch
import json

from aiohttp import web

from ..auth import bearer_session
from ..config import ApexRestRoute
from ..errors import SalesforceApiError
from ..web import ApiSurface, json_response, register_surface, state_of
from ..wire import REST_HEADERS
from .render import render_rest_error

PREFIX = "/services/apexrest"


def _matches(route: ApexRestRoute, path: str) -> bool:
    pattern = "/" + route.path.strip("/")
    return fnmatch.fnmatchcase(path.rstrip("/") or "/", pattern) or (
        pattern.endswith("/*") and path.rstrip("/") == pattern[:-2])


async def apex(request: web.Request) -> web.Response:
    """Any method on ``/services/apexrest/{path}``."""
    path = "/" + request.match_info["path"]
    routes = [r for r in state_of(request).config.apex_rest if _matches(r, path)]
    if not routes:
        raise SalesforceApiError("NOT_FOUND", f"Could not find a match for URL {path}", status=404)
    route = next((r for r in routes if r.method.upper() == request.method), None)
    if route is None:
        allowed = ", ".join(sorted({r.method.upper() for r in routes}))
        raise SalesforceApiError("METHOD_NOT_ALLOWED",
                                 f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}", status=405)
    if route.echo:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw
        return json_response(body, status=route.status)
    if route.status == 204:
        return web.Response(status=204)
    return json_response(route.response, status=route.status)


def register(app: web.Application) -> None:
    """Add the Apex REST route and its surface (REST error format, bearer session).

    :param app: the emulator application.
    """
    app.router.add_route("*", PREFIX + "/{path:.*}", apex)
    register_surface(app, ApiSurface(name="apexrest", prefix=PREFIX, render_error=render_rest_error,
                                     authenticate=bearer_session, counts_api_usage=True, wire=REST_HEADERS))
