"""Streaming test knobs under ``/__emulator__/streaming/`` (served on the control API's surface)."""

from __future__ import annotations


from aiohttp import web

from ..errors import SalesforceApiError
from ..web import json_response, read_json_object
from .channels import ROUTER_KEY, cdc_selection
from .hub import HUB_KEY, StreamingHub

PREFIX = "/__emulator__/streaming"


def _hub(request: web.Request) -> StreamingHub:
    return request.app[HUB_KEY]


async def get_config(request: web.Request) -> web.Response:
    """``GET .../config``: the streaming knobs."""
    return json_response(_hub(request).config.to_json())


async def set_config(request: web.Request) -> web.Response:
    """``POST .../config {"connect_timeout": 1, "max_interval", "max_events_per_channel", "retention_seconds",
    "cdc_entities": ["Account", "Invoice__c"]}`` (``cdc_entities`` replaces the Change Data Capture
    selection; a data reset restores the configured one)."""
    hub = _hub(request)
    body = await read_json_object(request)
    router = request.app[ROUTER_KEY]
    try:
        # validated first: a bad selection changes nothing
        selection = cdc_selection(router.store, body.pop("cdc_entities")) if "cdc_entities" in body else None
        hub.config.update(body)
        if selection is not None:
            router.select_cdc(selection)
    except (TypeError, ValueError) as exc:
        raise SalesforceApiError("INVALID_REQUEST", str(exc)) from None
    return json_response(hub.config.to_json())


async def forget_clients(request: web.Request) -> web.Response:
    """``POST .../forget-clients``: the server forgets every client (``403::Unknown client`` next)."""
    return json_response({"forgotten": _hub(request).forget_all()})


async def drop_connects(request: web.Request) -> web.Response:
    """``POST .../drop-connects``: abort the connection of every held ``/meta/connect``."""
    return json_response({"dropped": _hub(request).drop_held_connects()})


async def age_out(request: web.Request) -> web.Response:
    """``POST .../age-out {"channel"?, "count"?, "seconds"?}``: drop the N oldest events, or shift
    events back in time so the retention window drops them."""
    body = await read_json_object(request)
    count, seconds = body.get("count"), body.get("seconds")
    if count is None and seconds is None:
        raise SalesforceApiError("INVALID_REQUEST", "give count or seconds")
    try:
        dropped = _hub(request).age_out(body.get("channel"), None if count is None else int(count),
                                        None if seconds is None else float(seconds))
    except (TypeError, ValueError) as exc:
        raise SalesforceApiError("INVALID_REQUEST", str(exc)) from None
    return json_response({"aged_out": dropped})


async def channels(request: web.Request) -> web.Response:
    """``GET .../channels``: each replay log's ids and size."""
    hub = _hub(request)
    return json_response({name: log.summary() for name, log in sorted(hub.logs.items())})


def register(app: web.Application, hub: StreamingHub) -> None:
    """Add the knobs' routes (the ``/__emulator__`` surface renders their errors, never faults them).

    :param app: the emulator application.
    :param hub: the streaming hub.
    """
    config = app.router.add_resource(PREFIX + "/config")
    config.add_route("GET", get_config)
    config.add_route("POST", set_config)
    app.router.add_post(PREFIX + "/forget-clients", forget_clients)
    app.router.add_post(PREFIX + "/drop-connects", drop_connects)
    app.router.add_post(PREFIX + "/age-out", age_out)
    app.router.add_get(PREFIX + "/channels", channels)
