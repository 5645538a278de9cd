"""What every API sub-package shares with :mod:`.app`: app keys, the surface registry, JSON.

An *API surface* is a path prefix with its own wire format (REST JSON under ``/services/data``,
OAuth JSON under ``/services/oauth2``, later SOAP under ``/services/Soap``, Bulk XML under
``/services/async`` ...). Each sub-package's ``routes(app, state)`` adds its routes and
registers its surface; the middlewares in :mod:`.app` look the surface up (longest prefix)
to know how to authenticate the request and how to render its errors.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import SalesforceApiError
from .wire import PLAIN_HEADERS, REST_JSON, WireHeaders, json_reply

if TYPE_CHECKING:
    from .sessions import Session
    from .state import EmulatorState

#: Renders a :class:`SalesforceApiError` in one wire format.
ErrorRenderer = Callable[[web.Request, SalesforceApiError], web.StreamResponse]
#: Resolves the session of a request, raising ``SalesforceApiError`` (e.g. INVALID_SESSION_ID).
Authenticator = Callable[[web.Request], Awaitable["Session"]]

STATE_KEY: web.AppKey[EmulatorState] = web.AppKey("emulator_state")
SURFACES_KEY: web.AppKey[list[ApiSurface]] = web.AppKey("emulator_surfaces")

def _request_key(name: str, kind: type) -> Any:
    # aiohttp >= 3.13 has typed request keys (plain strings warn); older releases take strings.
    factory = getattr(web, "RequestKey", None)
    return factory(name, kind) if factory is not None else name


#: request[SESSION] is the authenticated session (set by the auth middleware).
SESSION: Any = _request_key("emulator_session", object)
#: request[LIMIT_INFO] is the Sforce-Limit-Info value to send back (set by the limits middleware).
LIMIT_INFO: Any = _request_key("emulator_limit_info", str)
#: request[DROPPED] marks a request whose connection a fault closed.
DROPPED: Any = _request_key("emulator_dropped", bool)
#: request[TRUNCATE] is ``"none"`` or ``"half"``: how much of a streamed reply a fault lets out.
TRUNCATE: Any = _request_key("emulator_truncate", str)

JSON_CONTENT_TYPE = REST_JSON


@dataclass(frozen=True)
class ApiSurface:
    """One API family: where it lives, how it authenticates, how its errors look.

    :param name: short name (``rest``, ``oauth``, ``admin`` ...), used in stats.
    :param prefix: path prefix (``/services/data``).
    :param render_error: the error renderer for this wire format.
    :param authenticate: session resolver for requests that need one (``None``: no auth here,
        or the handlers authenticate themselves).
    :param public_paths: exact paths under ``prefix`` that need no session.
    :param counts_api_usage: whether requests count toward the daily API limit.
    :param faultable: whether fault rules may hit this surface (never the admin API).
    :param wire: the headers every reply of this surface carries (see :mod:`.wire`).
    """

    name: str
    prefix: str
    render_error: ErrorRenderer
    authenticate: Authenticator | None = None
    public_paths: frozenset[str] = frozenset()
    counts_api_usage: bool = False
    faultable: bool = True
    wire: WireHeaders = PLAIN_HEADERS

    def covers(self, path: str) -> bool:
        """Whether ``path`` belongs to this surface.

        :param path: request path.
        """
        return path == self.prefix or path.startswith(self.prefix.rstrip("/") + "/")

    def needs_session(self, path: str) -> bool:
        """Whether a request to ``path`` must carry a valid session.

        :param path: request path.
        """
        return self.authenticate is not None and path.rstrip("/") not in self.public_paths


def register_surface(app: web.Application, surface: ApiSurface) -> None:
    """Register an API surface (called by each sub-package's ``routes``).

    :param app: the emulator application.
    :param surface: the surface.
    """
    surfaces = app[SURFACES_KEY]
    surfaces.append(surface)
    # Longest prefix first, so /services/data/vXX.X/jobs can later be its own surface.
    surfaces.sort(key=lambda s: len(s.prefix), reverse=True)


def add_route_table(app: web.Application, prefix: str, table: Iterable[tuple[str, Mapping[str, Any]]],
                    suffix: str = "") -> None:
    """Add ``(path, {METHOD: handler})`` rows under ``prefix`` (every API package's routes go in this way).

    :param app: the emulator application.
    :param prefix: path pattern the table's paths are relative to.
    :param table: rows of a path and its handlers by HTTP method.
    :param suffix: pattern appended to every path (e.g. an optional trailing slash).
    """
    for path, methods in table:
        resource = app.router.add_resource(prefix + path + suffix)
        for method, handler in methods.items():
            resource.add_route(method, handler)


def attach_service(app: web.Application, state: EmulatorState, key: web.AppKey[Any], service: Any, *,
                   close: Callable[[], None] | None = None, admin: tuple[str, Any] | None = None) -> None:
    """Keep an API package's service on the app, reset it with the emulator and close it on shutdown.

    :param app: the emulator application.
    :param state: the emulator state (its ``reset_hooks`` get ``service.reset``).
    :param key: the app key handlers find the service under.
    :param service: the service (has ``reset()``).
    :param close: called when the app shuts down.
    :param admin: ``(path, handler)`` of the package's ``GET|POST /__emulator__/...`` knobs.
    """
    app[key] = service
    state.reset_hooks.append(service.reset)
    if close is not None:
        async def on_cleanup(_app: web.Application) -> None:
            close()

        app.on_cleanup.append(on_cleanup)
    if admin is not None:
        add_route_table(app, "", [(admin[0], {"GET": admin[1], "POST": admin[1]})])


def surface_for(app: web.Application, path: str) -> ApiSurface | None:
    """The surface a path belongs to (``None`` outside every surface).

    :param app: the emulator application.
    :param path: request path.
    """
    return next((s for s in app[SURFACES_KEY] if s.covers(path)), None)


def state_of(request: web.Request) -> EmulatorState:
    """The emulator state behind a request.

    :param request: the request.
    """
    return request.app[STATE_KEY]


def session_of(request: web.Request) -> Session:
    """The authenticated session of a request (set by the auth middleware).

    :param request: the request.
    """
    return request[SESSION]


def base_url(request: web.Request) -> str:
    """The emulator's base URL as this client reached it (``https://127.0.0.1:8555``).

    Used for ``instance_url`` and identity URLs, so clients come back the way they came.

    :param request: the request.
    """
    return f"{request.scheme}://{request.host}"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response with the REST API's exact ``Content-Type``.

    :param data: the body.
    :param status: HTTP status.
    :param headers: extra headers.
    """
    return json_reply(data, REST_JSON, status, headers)


def no_content() -> web.Response:
    """A 204 with no body (PATCH/DELETE success)."""
    return web.Response(status=204)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; malformed JSON raises Salesforce's ``JSON_PARSER_ERROR``.

    :param request: the request.
    """
    raw = await request.text()
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        # Salesforce's parser is Jackson; mimic the gist of its message (position included).
        token = raw[exc.pos : exc.pos + 1] or "EOF"
        raise SalesforceApiError(
            "JSON_PARSER_ERROR",
            f"Unexpected character ('{token}' (code {ord(token) if len(token) == 1 else -1})): "
            f"{exc.msg} at [line:{exc.lineno}, column:{exc.colno}]",
        ) from None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The control API's optional JSON object body (no body: ``{}``).

    :param request: the request.
    :raises SalesforceApiError: ``INVALID_REQUEST`` for a body that is not a JSON object.
    """
    if not request.can_read_body:
        return {}
    body = await read_json(request)
    if not isinstance(body, dict):
        raise SalesforceApiError("INVALID_REQUEST", "expected a JSON object")
    return body
