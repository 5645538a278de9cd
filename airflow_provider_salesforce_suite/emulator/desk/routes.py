"""Routes of the Desk API v2 surface (``/api/v2``) and its admin knob ``/__emulator__/desk``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import SalesforceApiError
from ..web import add_route_table, ApiSurface, _request_key, attach_service, json_response, read_json, register_surface
from . import handlers as h
from .resources import PREFIX
from .service import DESK_KEY, DeskService, service_of

if TYPE_CHECKING:
    from ..state import EmulatorState

_HEADERS_KEY: Any = _request_key("desk_rate_limit_headers", dict)

_READABLE = "articles|cases|companies|customers|groups|topics|users|labels|filters"
_WRITABLE = "articles|cases|companies|customers|topics|labels"
_ID = r"{id:\d+}"


def _table() -> list[tuple[str, dict]]:
    return [
        ("/users/me", {"GET": h.me}),
        ("/{collection:cases|customers|articles}/search", {"GET": h.search}),
        ("/{collection:%s}" % _WRITABLE, {"GET": h.list_entries, "POST": h.create}),
        ("/{collection:groups|users|filters}", {"GET": h.list_entries}),
        ("/{collection:%s}/%s" % (_WRITABLE, _ID), {"GET": h.show, "PATCH": h.update}),
        ("/{collection:groups|users|filters}/%s" % _ID, {"GET": h.show}),
        ("/cases/%s/forward" % _ID, {"POST": h.forward}),
        ("/{parent:cases}/%s/{child:notes|replies|attachments}" % _ID, {"GET": h.list_children,
                                                                         "POST": h.create_child}),
        ("/{parent:articles}/%s/{child:attachments}" % _ID, {"GET": h.list_children, "POST": h.create_child}),
        ("/{parent:cases|articles}/%s/{child:notes|replies|attachments}/{child_id:\\d+}" % _ID,
         {"GET": h.show_child}),
        ("/{parent:companies}/%s/{child:cases|customers}" % _ID, {"GET": h.list_children}),
        ("/{parent:customers|filters}/%s/{child:cases}" % _ID, {"GET": h.list_children}),
        ("/{parent:topics}/%s/{child:articles}" % _ID, {"GET": h.list_children}),
    ]


def render_desk_error(request: web.Request, error: SalesforceApiError) -> web.StreamResponse:
    """Desk's error bodies: ``{"message": ...}`` plus ``errors`` for a 422.

    :param request: the request.
    :param error: the error.
    """
    message = {401: "Unauthorized", 404: "Resource Not Found", 429: "Too Many Requests"}.get(error.status,
                                                                                          error.message)
    body: dict = {"message": message}
    if "errors" in error.extra:
        body["errors"] = error.extra["errors"]
    return json_response(body, status=error.status)


async def _authenticate(request: web.Request) -> dict:
    """Basic or OAuth 1.0a agent, then the rate limiter (429 with the reset header past it)."""
    service = service_of(request)
    agent = service.authenticate(request)
    allowed, headers = service.limiter.hit()
    request[_HEADERS_KEY] = headers
    if not allowed:
        raise SalesforceApiError("TOO_MANY_REQUESTS", "Too Many Requests", status=429)
    return agent  # type: ignore[return-value]


async def _add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = request.get(_HEADERS_KEY)
    if headers:
        response.headers.update(headers)


async def desk_settings(request: web.Request) -> web.Response:
    """``GET|POST /__emulator__/desk``: ``{"limit", "window_seconds", "throttle_next"}`` of the rate
    limiter (``throttle_next``: answer the next N Desk requests with 429)."""
    service = service_of(request)
    if request.method == "POST":
        body = await read_json(request) if request.can_read_body else {}
        service.limiter.configure(body if isinstance(body, dict) else {})
    return json_response(service.limiter.to_json())


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the Desk API's routes, its surface and the admin knob.

    :param app: the emulator application.
    :param state: the emulator state.
    """
    service = DeskService(state)
    attach_service(app, state, DESK_KEY, service, admin=("/__emulator__/desk", desk_settings))
    add_route_table(app, PREFIX, _table())
    register_surface(app, ApiSurface(name="desk", prefix=PREFIX, render_error=render_desk_error,
                                     authenticate=_authenticate))
    app.on_response_prepare.append(_add_rate_headers)


__all__ = ["routes", "render_desk_error"]
