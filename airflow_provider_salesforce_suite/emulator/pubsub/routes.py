"""Wires the Pub/Sub API's state into the emulator application (after the Streaming API, whose
event log it shares): the service object, the data-reset hook and the admin knobs. The gRPC
server itself is started by :class:`~..server.EmulatorServer` when it is given a Pub/Sub port."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..streaming.channels import ROUTER_KEY
from ..streaming.hub import HUB_KEY
from ..web import add_route_table, attach_service
from . import admin, tooling
from .service import PUBSUB_KEY, PubSubService

if TYPE_CHECKING:
    from ..state import EmulatorState


def routes(app: web.Application, state: EmulatorState) -> None:
    """Create the Pub/Sub service over the Streaming API's hub; add its knobs and the Tooling API's
    ManagedEventSubscription.

    :param app: the emulator application (the Streaming API is already registered).
    :param state: the emulator state.
    """
    service = PubSubService(state, app[HUB_KEY], app[ROUTER_KEY])
    attach_service(app, state, PUBSUB_KEY, service)
    admin.register(app)
    # on the REST surface: bearer sessions, REST errors
    add_route_table(app, r"/services/data/{version:v[0-9]+\.[0-9]+}/tooling", tooling.table(), "{slash:/?}")
