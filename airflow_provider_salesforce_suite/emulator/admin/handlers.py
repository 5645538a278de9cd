"""Control API handlers: reset, session expiry, fault rules, stats, refresh tokens."""

from __future__ import annotations

import time

from aiohttp import web

from ..config import DEFAULT_CONSUMER_KEY, DEFAULT_USERNAME
from ..errors import SalesforceApiError
from ..pubsub.service import PUBSUB_KEY
from ..streaming.hub import hub_of
from ..web import json_response, read_json_object, state_of


async def health(request: web.Request) -> web.Response:
    """``GET /__emulator__/health``: readiness probe."""
    return json_response({"status": "ok"})


async def reset(request: web.Request) -> web.Response:
    """``POST /__emulator__/reset``: wipe data, faults, stats and API counters.

    Optional body ``{"data": bool, "faults": bool, "stats": bool, "sessions": bool}``
    (sessions are kept by default so clients' cached tokens stay valid).
    """
    body = await read_json_object(request)
    options = {k: bool(body[k]) for k in ("data", "faults", "stats", "sessions", "api_usage") if k in body}
    state_of(request).reset(**options)
    return json_response({"reset": True})


async def expire_sessions(request: web.Request) -> web.Response:
    """``POST /__emulator__/sessions/expire``: every access token is now invalid (held streaming
    connects wake up and answer ``401::Authentication invalid``)."""
    expired = state_of(request).sessions.expire_all()
    hub = hub_of(request.app)
    if hub is not None:
        hub.wake_all()
    return json_response({"expired": expired})


async def add_fault(request: web.Request) -> web.Response:
    """``POST /__emulator__/faults``: add a fault rule (see :class:`~..faults.FaultRule`)."""
    body = await read_json_object(request)
    try:
        rule = state_of(request).faults.add(body)
    except (TypeError, ValueError) as exc:
        raise SalesforceApiError("INVALID_FAULT", str(exc)) from None
    return json_response(rule.to_json(), status=201)


async def list_faults(request: web.Request) -> web.Response:
    """``GET /__emulator__/faults``: the active rules."""
    return json_response([rule.to_json() for rule in state_of(request).faults.rules()])


async def clear_faults(request: web.Request) -> web.Response:
    """``DELETE /__emulator__/faults``: remove every rule."""
    state_of(request).faults.clear()
    return web.Response(status=204)


async def stats(request: web.Request) -> web.Response:
    """``GET /__emulator__/stats``: request and auth counters, and ``process_cpu_s``, the emulator
    process's CPU seconds so far (every thread: handlers, Bulk workers, Pub/Sub), which a benchmark
    reads before and after a case to report the emulator's own work for it."""
    state = state_of(request)
    body = state.stats.snapshot()
    body["process_cpu_s"] = time.process_time()
    body["api_usage"] = state.api_usage.used()
    body["live_sessions"] = len(state.sessions)
    hub = hub_of(request.app)
    if hub is not None:
        body["streaming"] = hub.stats()
    pubsub = request.app.get(PUBSUB_KEY)
    if pubsub is not None:
        body["pubsub"] = pubsub.stats()
    return json_response(body)


async def reset_stats(request: web.Request) -> web.Response:
    """``DELETE /__emulator__/stats``: zero the counters."""
    state_of(request).stats.reset()
    hub = hub_of(request.app)
    if hub is not None:
        hub.reset_counters()
    pubsub = request.app.get(PUBSUB_KEY)
    if pubsub is not None:
        pubsub.reset_counters()
    return web.Response(status=204)


async def refresh_token(request: web.Request) -> web.Response:
    """``POST /__emulator__/refresh-tokens {"username", "client_id"}``: mint a refresh token,
    standing in for the browser-based authorization flow."""
    body = await read_json_object(request)
    state = state_of(request)
    username = body.get("username", DEFAULT_USERNAME)
    client_id = body.get("client_id", DEFAULT_CONSUMER_KEY)
    user = state.user(username)
    if user is None:
        raise SalesforceApiError("NOT_FOUND", f"no user {username!r}", status=404)
    if state.connected_app(client_id) is None:
        raise SalesforceApiError("NOT_FOUND", f"no connected app with consumer key {client_id!r}", status=404)
    refresh = state.sessions.issue_refresh_token(user.username, client_id)
    return json_response(
        {"refresh_token": refresh.token, "username": user.username, "client_id": client_id}, status=201
    )
