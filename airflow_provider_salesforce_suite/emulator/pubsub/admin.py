"""Pub/Sub test knobs under ``/__emulator__/pubsub/`` (served on the control API's surface).

* ``GET /__emulator__/pubsub``: the gRPC endpoint, config and counters.
* ``GET|POST .../config {"keepalive_seconds": 270, "delay_ms": 0}``.
* ``POST .../drop-streams``: end every open Subscribe/ManagedSubscribe/PublishStream with UNAVAILABLE.
* ``POST .../stall-streams {"seconds": 5}``: open subscriptions send nothing, not even keepalives
  (a half-dead connection, for clients' keepalive timeouts).
* ``GET|POST|DELETE .../faults {"rpc", "status", "error_code", "message", "count", "after"}``: fail
  the next calls of an RPC (``after``: a Publish is carried out, then its reply is an error).
* ``POST .../managed-subscriptions {"developer_name", "topic", "state"?, "default_replay"?}``,
  ``GET .../managed-subscriptions``, ``GET|POST .../managed-subscriptions/{id or name}``
  (``{"state": "STOP"}``); the GET shows the committed replay id and every commit.

Session expiry uses the existing ``POST /__emulator__/sessions/expire``: open streams end with
UNAUTHENTICATED within a second and new calls are refused.
"""

from __future__ import annotations


from aiohttp import web

from ..errors import SalesforceApiError
from ..web import add_route_table, json_response, read_json_object
from .managed import ManagedSubscription
from .service import PUBSUB_KEY, PubSubService
from .wire import PubSubFault

PREFIX = "/__emulator__/pubsub"


def _service(request: web.Request) -> PubSubService:
    return request.app[PUBSUB_KEY]


async def overview(request: web.Request) -> web.Response:
    """``GET /__emulator__/pubsub``."""
    service = _service(request)
    return json_response({"endpoint": service.endpoint, "config": service.config.to_json(), "stats": service.stats()})


async def get_config(request: web.Request) -> web.Response:
    """``GET .../config``."""
    return json_response(_service(request).config.to_json())


async def set_config(request: web.Request) -> web.Response:
    """``POST .../config {"keepalive_seconds", "delay_ms"}``."""
    service = _service(request)
    try:
        service.config.update(await read_json_object(request))
    except (TypeError, ValueError) as exc:
        raise SalesforceApiError("INVALID_REQUEST", str(exc)) from None
    return json_response(service.config.to_json())


async def drop_streams(request: web.Request) -> web.Response:
    """``POST .../drop-streams``."""
    return json_response({"dropped": _service(request).drop_streams()})


async def stall_streams(request: web.Request) -> web.Response:
    """``POST .../stall-streams {"seconds": 5}``: open subscriptions go silent (no events, no keepalives)."""
    body = await read_json_object(request)
    try:
        stalled = _service(request).stall_streams(float(body.get("seconds", 0)))
    except (TypeError, ValueError) as exc:
        raise SalesforceApiError("INVALID_REQUEST", str(exc)) from None
    return json_response({"stalled": stalled})


async def add_fault(request: web.Request) -> web.Response:
    """``POST .../faults {"rpc": "Publish", "status": "UNAVAILABLE", "error_code", "message", "count": 1,
    "after": false}``: fail the next matching RPC calls (``after``: publish first, then fail)."""
    service = _service(request)
    try:
        fault = service.add_fault(await read_json_object(request))
    except (TypeError, ValueError) as exc:
        raise SalesforceApiError("INVALID_REQUEST", str(exc)) from None
    return json_response(fault.to_json(), status=201)


async def list_faults(request: web.Request) -> web.Response:
    """``GET .../faults``: the rules not spent yet."""
    return json_response([f.to_json() for f in _service(request).faults])


async def clear_faults(request: web.Request) -> web.Response:
    """``DELETE .../faults``."""
    _service(request).faults.clear()
    return web.Response(status=204)


async def create_managed(request: web.Request) -> web.Response:
    """``POST .../managed-subscriptions``: a new managed subscription (topic checked)."""
    service = _service(request)
    body = await read_json_object(request)
    topic = body.get("topic")
    try:
        service.catalog.topic(str(topic or ""))
        sub = service.managed.create(str(body.get("developer_name") or ""), str(topic),
                                     state=str(body.get("state", "RUN")),
                                     default_replay=str(body.get("default_replay", "LATEST")))
    except PubSubFault as fault:
        raise SalesforceApiError("INVALID_REQUEST", fault.message) from None
    except ValueError as exc:
        raise SalesforceApiError("INVALID_REQUEST", str(exc)) from None
    return json_response(sub.to_json(), status=201)


async def list_managed(request: web.Request) -> web.Response:
    """``GET .../managed-subscriptions``."""
    return json_response([s.to_json() for s in _service(request).managed.all()])


def _managed(request: web.Request) -> ManagedSubscription:
    key = request.match_info["key"]
    sub = _service(request).managed.get(key)
    if sub is None:
        raise SalesforceApiError("NOT_FOUND", f"no managed subscription {key}", status=404)
    return sub


async def get_managed(request: web.Request) -> web.Response:
    """``GET .../managed-subscriptions/{id or developer name}``: state, committed replay id, commits."""
    return json_response(_managed(request).to_json())


async def update_managed(request: web.Request) -> web.Response:
    """``POST .../managed-subscriptions/{key} {"state": "RUN"|"STOP"}``."""
    sub = _managed(request)
    state = (await read_json_object(request)).get("state")
    if state not in ("RUN", "STOP"):
        raise SalesforceApiError("INVALID_REQUEST", "state must be RUN or STOP")
    sub.state = state
    return json_response(sub.to_json())


def register(app: web.Application) -> None:
    """Add the knobs' routes (the ``/__emulator__`` surface renders their errors, never faults them).

    :param app: the emulator application.
    """
    add_route_table(app, PREFIX, [
        ("", {"GET": overview}),
        ("/config", {"GET": get_config, "POST": set_config}),
        ("/drop-streams", {"POST": drop_streams}),
        ("/stall-streams", {"POST": stall_streams}),
        ("/faults", {"GET": list_faults, "POST": add_fault, "DELETE": clear_faults}),
        ("/managed-subscriptions", {"GET": list_managed, "POST": create_managed}),
        ("/managed-subscriptions/{key}", {"GET": get_managed, "POST": update_managed}),
    ])
