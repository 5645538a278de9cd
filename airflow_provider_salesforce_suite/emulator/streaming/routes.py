"""Routes of the Streaming API: ``POST /cometd/XX.X``, the StreamingChannel push resource and the
``/__emulator__/streaming/*`` test knobs; wires the store listener and the data-reset hook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..config import API_VERSIONS, MAX_API_VERSION
from ..errors import SalesforceApiError
from ..web import ApiSurface, json_response, read_json, register_surface
from . import admin
from .bayeux import BayeuxEndpoint
from .channels import ROUTER_KEY, ChannelRouter
from .hub import HUB_KEY, StreamingHub

if TYPE_CHECKING:
    from ..state import EmulatorState

PREFIX = "/cometd"
ENDPOINT_KEY: web.AppKey[BayeuxEndpoint] = web.AppKey("emulator_streaming_endpoint")
_URI_FORMAT = f"URI format: '/cometd/{MAX_API_VERSION}.0'"


def render_streaming_error(request: web.Request, error: SalesforceApiError) -> web.Response:
    """Errors outside a Bayeux message (bad URI, bad JSON, injected faults) as a Bayeux-style list.

    :param request: the request.
    :param error: the error.
    """
    return json_response([{"successful": False, "error": f"{error.status}::{error.message}"}], status=error.status)


async def cometd(request: web.Request) -> web.StreamResponse:
    """``POST /cometd/XX.X``: one batch of Bayeux messages."""
    version = request.match_info.get("version", "")
    if not version:
        raise SalesforceApiError("BAD_REQUEST", f"API version in the URI is mandatory. {_URI_FORMAT}")
    if version not in API_VERSIONS:
        raise SalesforceApiError(
            "BAD_REQUEST", f"Unsupported API version. Only API versions '{API_VERSIONS[0]}' and above are supported. "
                           f"{_URI_FORMAT}")
    body: Any = await read_json(request)
    messages = body if isinstance(body, list) else [body]
    return await request.app[ENDPOINT_KEY].handle(request, messages)


async def push(request: web.Request) -> web.Response:
    """``POST /services/data/vXX.X/sobjects/StreamingChannel/{id}/push``: generic streaming events.

    Body ``{"pushEvents": [{"payload": "...", "userIds": ["005..."]}]}``; answers one
    ``{"fanoutCount", "userOnlineStatus"}`` per pushed event.
    """
    router = request.app[ROUTER_KEY]
    record = router.store.retrieve("StreamingChannel", request.match_info["record_id"], ["Name"],
                                   api_version=request.match_info["version"][1:])
    body = await read_json(request)
    events = body.get("pushEvents") if isinstance(body, dict) else None
    if not isinstance(events, list) or not events:
        raise SalesforceApiError("JSON_PARSER_ERROR", "pushEvents is required", fields=["pushEvents"])
    channel = record["Name"]
    hub = router.hub
    results = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("payload"), str):
            raise SalesforceApiError("JSON_PARSER_ERROR", "Each push event needs a string payload", fields=["payload"])
        user_ids = frozenset(event.get("userIds") or ())
        subscribers = [hub.clients[c] for c in hub.subscribers.get(channel, ()) if c in hub.clients]
        online = {c.user_id for c in subscribers}
        hub.publish_many([router.generic_event(channel, event["payload"], user_ids)])
        reached = [c for c in subscribers if not user_ids or c.user_id in user_ids]
        results.append({"fanoutCount": len(reached),
                        "userOnlineStatus": {u: u in online for u in sorted(user_ids)}})
    return json_response(results)


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the Streaming API's routes, register its surface and hook the hub to the store.

    :param app: the emulator application.
    :param state: the emulator state.
    """
    hub = StreamingHub()
    router = ChannelRouter(state.store, hub, state.config.cdc_entities)
    app[HUB_KEY] = hub
    app[ROUTER_KEY] = router
    app[ENDPOINT_KEY] = BayeuxEndpoint(hub, router.exists)
    state.store.add_listener(router.on_change, wants=router.wants)
    state.reset_hooks.append(router.reset)
    state.reset_hooks.append(hub.reset)

    async def bind_loop(_: web.Application) -> None:
        import asyncio

        hub.bind_loop(asyncio.get_running_loop())

    async def release_held_connects(_: web.Application) -> None:
        # A client that vanished (its process killed) leaves a connect held for up to the connect
        # timeout; on shutdown they answer now, or stopping the server would wait for them.
        hub.wake_all()

    app.on_startup.append(bind_loop)
    app.on_shutdown.append(release_held_connects)
    app.router.add_post(PREFIX + "{slash:/?}", cometd)
    app.router.add_post(PREFIX + r"/{version:[^/]+}{slash:/?}", cometd)
    app.router.add_post(r"/services/data/{version:v[0-9]+\.[0-9]+}/sobjects/StreamingChannel/{record_id}/push{slash:/?}",
                        push)
    admin.register(app, hub)
    # The endpoint authenticates each message itself (Bayeux errors, not HTTP 401s).
    register_surface(app, ApiSurface(name="streaming", prefix=PREFIX, render_error=render_streaming_error))
