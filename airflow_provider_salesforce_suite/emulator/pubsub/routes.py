"""Wires the Pub/Sub API's state into the emulator application (after the Streaming API, whose
event log it shares): the service object, the data-reset hook and the admin knobs. The gRPC
server itself is started by :class:`~..server.EmulatorServer` when it is given a Pub/Sub port."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..streaming.channels import ROUTER_KEY
from ..streaming.hub import HUB_KEY
from . import admin
from .service import PUBSUB_KEY, PubSubService

if TYPE_CHECKING:
    from ..state import EmulatorState


def routes(app: web.Application, state: EmulatorState) -> None:
    """Create the Pub/Sub service over the Streaming API's hub and add its knobs.

    :param app: the emulator application (the Streaming API is already registered).
    :param state: the emulator state.
    """
    service = PubSubService(state, app[HUB_KEY], app[ROUTER_KEY])
    app[PUBSUB_KEY] = service
    state.reset_hooks.append(service.reset)
    admin.register(app)
