"""The emulator's aiohttp application: routes of every API plus the cross-cutting middlewares.

Middlewares, outermost first:

1. ``errors``  - turns :class:`SalesforceApiError`, aiohttp's 404/405 and unexpected exceptions
   into the wire format of the API surface the path belongs to (one renderer per surface,
   chosen in :func:`render_error` only), and counts the request in the stats.
2. ``faults``  - injected latency, errors, dropped connections, and replies lost or cut after the
   request was carried out (admin-configured; see :mod:`.faults`).
3. ``auth``    - resolves the session with the surface's authenticator.
4. ``limits``  - counts the request toward the daily API limit, refuses it past the limit and
   remembers the ``Sforce-Limit-Info`` value.

One ``on_response_prepare`` hook adds each surface's standing headers (``Cache-Control``,
``Sforce-Limit-Info``: :mod:`.wire`) to success *and* error responses.

Each API package exposes ``routes(app, state)``, which adds its routes and registers its
:class:`~.web.ApiSurface`; adding an API (SOAP, Bulk ...) is one more entry in ``_API_PACKAGES``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from .admin import routes as admin_routes
from .analytics import routes as analytics_routes
from .bulk import routes as bulk_routes
from .desk import routes as desk_routes
from .errors import SalesforceApiError
from .limits import ApiUsage
from .oauth import routes as oauth_routes
from .pardot import routes as pardot_routes
from .pubsub import routes as pubsub_routes
from .rest import routes as rest_routes
from .rest.render import render_rest_error
from .soap import routes as soap_routes
from .state import EmulatorState
from .streaming import routes as streaming_routes
from .ui import routes as ui_routes
from .wire import add_surface_headers
from .web import DROPPED, LIMIT_INFO, TRUNCATE, SESSION, STATE_KEY, SURFACES_KEY, ApiSurface, state_of, surface_for

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Every API package's ``routes(app, state)``; later: soap, bulk, streaming, analytics, pardot, desk.
_API_PACKAGES: tuple[Callable[[web.Application, EmulatorState], None], ...] = (
    oauth_routes.routes,
    rest_routes.routes,
    bulk_routes.routes,
    analytics_routes.routes,
    soap_routes.routes,
    streaming_routes.routes,
    pubsub_routes.routes,  # after streaming: it reads the same event log
    desk_routes.routes,
    pardot_routes.routes,
    ui_routes.routes,
    admin_routes.routes,
)

#: Bodies can be large (Bulk API uploads); Salesforce accepts up to 150 MB.
MAX_BODY_BYTES = 150 * 1024 * 1024


def build_app(state: EmulatorState) -> web.Application:
    """The emulator application over ``state``.

    :param state: the emulator state (store, config, sessions, faults, counters).
    """
    app = web.Application(
        middlewares=[errors_middleware, faults_middleware, auth_middleware, limits_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    app[STATE_KEY] = state
    app[SURFACES_KEY] = []
    for register in _API_PACKAGES:
        register(app, state)
    app.on_response_prepare.append(_add_surface_headers)
    app.on_response_prepare.append(_cut_streamed_reply)
    return app


def render_error(request: web.Request, error: SalesforceApiError) -> web.StreamResponse:
    """Render ``error`` in the wire format of the surface the request's path belongs to.

    The one place a renderer is chosen; paths outside every surface get the REST format.

    :param request: the request.
    :param error: the error.
    """
    surface = surface_for(request.app, request.path)
    renderer = surface.render_error if surface is not None else render_rest_error
    return renderer(request, error)


def _http_error(request: web.Request, exc: web.HTTPException) -> SalesforceApiError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ",".join(sorted(exc.allowed_methods))
        return SalesforceApiError(
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}",
            status=405,
        )
    if exc.status == 404:
        return SalesforceApiError("NOT_FOUND", "The requested resource does not exist", status=404)
    if exc.status == 413:
        return SalesforceApiError("REQUEST_ENTITY_TOO_LARGE", "Request entity too large", status=413)
    return SalesforceApiError("UNKNOWN_EXCEPTION", exc.reason, status=exc.status)


def _unknown_exception() -> SalesforceApiError:
    # Salesforce hides the cause behind an ErrorId; the traceback goes to our log only.
    error_id = f"{secrets.randbelow(10**9):09d}-{secrets.randbelow(10**5):05d} ({-secrets.randbelow(10**9)})"
    return SalesforceApiError(
        "UNKNOWN_EXCEPTION",
        f"An unexpected error occurred. Please include this ErrorId if you contact support: {error_id}",
        status=500,
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure in the surface's wire format; count the request in the stats."""
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
    except SalesforceApiError as exc:
        response = render_error(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like pass through
            raise
        response = render_error(request, _http_error(request, exc))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        response = render_error(request, _unknown_exception())
    finally:
        _record(request, response)
    return response


def _record(request: web.Request, response: web.StreamResponse | None) -> None:
    surface = surface_for(request.app, request.path)
    if surface is not None and surface.name == "admin":
        return  # the control API is not what tests count
    status = None if request.get(DROPPED) or response is None else response.status
    prefix = surface.prefix if surface is not None else "/"
    state_of(request).stats.record_request(request.method, request.path, prefix, status)


@web.middleware
async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the first fault rule that hits this request (see :mod:`.faults` for the fates)."""
    surface = surface_for(request.app, request.path)
    if surface is None or not surface.faultable:
        return await handler(request)
    state = state_of(request)
    rule = state.faults.pick(request.method, request.path)
    if rule is None:
        return await handler(request)
    state.stats.record_fault()
    if rule.latency_ms:
        await asyncio.sleep(rule.latency_ms / 1000)
    if rule.expire_session:
        state.sessions.expire_all()
    if rule.drop_connection:
        return _drop(request)
    if rule.body is not None:
        return web.Response(status=rule.status or 200, body=rule.body.encode("utf-8"),
                            headers={"Content-Type": rule.content_type})
    if rule.fails:
        response = render_error(
            request,
            SalesforceApiError(rule.error_code or "UNKNOWN_EXCEPTION", rule.message or "", status=rule.status or 500),
        )
        if rule.retry_after is not None:
            response.headers["Retry-After"] = str(rule.retry_after)
        return response
    if not rule.after_handler:
        return await handler(request)  # latency or session expiry only
    # A reply the handler streams itself is lost or cut at its first write (_cut_streamed_reply).
    request[TRUNCATE] = "half" if rule.truncate_body else "none"
    try:
        response = await handler(request)  # carried out: a write is committed whatever happens next
    except SalesforceApiError as exc:  # a refused request's reply is lost or cut just the same
        response = render_error(request, exc)
    except ConnectionResetError:
        if request.get(DROPPED):
            return web.Response(status=499)  # a streamed reply, lost or cut as asked
        raise
    request[TRUNCATE] = ""  # the handler is done: nothing more to cut at prepare time
    if rule.lose_reply:
        return _drop(request)
    return await _send_part(request, response)


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection with no reply."""
    request[DROPPED] = True
    if request.transport is not None:
        # abort(): no TLS close_notify, no response - what a load balancer reset looks like.
        request.transport.abort()
    return web.Response(status=499)


async def _send_part(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Send ``response``'s status, headers and the first half of its body, then close."""
    if response.prepared:
        return response  # streamed by its handler: already cut by _cut_streamed_reply
    body = getattr(response, "body", None)
    if not isinstance(body, (bytes, bytearray)) or len(body) < 2:
        return _drop(request)  # nothing to cut in half: the reply is lost instead
    part = web.StreamResponse(status=response.status, reason=response.reason, headers=response.headers)
    part.content_length = len(body)
    await part.prepare(request)
    await part.write(bytes(body[: len(body) // 2]))
    _close_mid_body(request)
    return part


def _close_mid_body(request: web.Request) -> None:
    request[DROPPED] = True
    if request.transport is not None:
        request.transport.close()  # flushes what was written, then closes: the body stops short


async def _cut_streamed_reply(request: web.Request, response: web.StreamResponse) -> None:
    """For a ``lose_reply``/``truncate_body`` hit whose handler streams the reply itself: at the
    first write, the connection is aborted (nothing sent) or half the data goes out, then it closes."""
    fate = request.get(TRUNCATE)
    if not fate or response is None:
        return
    write = response.write

    async def cut(data: bytes | bytearray | memoryview) -> None:
        if not data:
            return await write(data)
        if fate == "half":
            await write(bytes(data[: max(1, len(data) // 2)]))
            _close_mid_body(request)
        else:
            _drop(request)
        raise ConnectionResetError("emulator fault: reply lost or cut mid-body")

    response.write = cut  # type: ignore[method-assign]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the session for surfaces that need one (raises INVALID_SESSION_ID)."""
    surface = surface_for(request.app, request.path)
    if surface is not None and surface.needs_session(request.path):
        request[SESSION] = await surface.authenticate(request)  # type: ignore[misc]
    return await handler(request)


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count an authenticated API request; refuse it past the daily limit."""
    surface: ApiSurface | None = surface_for(request.app, request.path)
    session = request.get(SESSION)
    if surface is None or not surface.counts_api_usage or session is None:
        return await handler(request)
    state = state_of(request)
    org_max = state.config.daily_api_limit
    app = state.connected_app(session.consumer_key)
    if state.api_usage.used() >= org_max:
        request[LIMIT_INFO] = ApiUsage.header(state.api_usage.used(), org_max, None)
        raise SalesforceApiError("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", status=403)
    org_used, app_used = state.api_usage.count(app.name if app else None)
    app_info = (app.name, app_used, state.app_limit(app)) if app else None
    request[LIMIT_INFO] = ApiUsage.header(org_used, org_max, app_info)
    return await handler(request)


async def _add_surface_headers(request: web.Request, response: web.StreamResponse) -> None:
    surface = surface_for(request.app, request.path)
    if surface is not None:
        add_surface_headers(response, surface.wire, request.get(LIMIT_INFO))
