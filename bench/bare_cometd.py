"""A bare CometD (Bayeux long-polling) client on ``aiohttp``: the Streaming benchmarks' floor.

Handshake, one subscribe (with the replay extension), then ``/meta/connect`` in a loop, yielding each
event's arrival; no reconnection, no advice handling, no decoding beyond the JSON the transport
hands over. Nothing that receives Streaming API events over long polling does less.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

from bench.bench_rest_transport import VERSION


async def events(instance: str, token: str, channel: str, replay_id: int, ca_bundle: str | None) -> AsyncIterator[Any]:
    """Every event on ``channel`` from ``replay_id`` (-1: new ones, -2: every retained one), as it arrives.

    :param instance: the org's instance URL.
    :param token: an access token.
    :param channel: ``/data/AccountChangeEvent``, ``/topic/...``.
    :param replay_id: where to start.
    :param ca_bundle: the CA to trust (the emulator's), or ``None`` for the system's.
    """
    import aiohttp

    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
    url = f"{instance}/cometd/{VERSION}"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"},
                                     connector=aiohttp.TCPConnector(ssl=context)) as session:
        async def send(message: dict[str, Any]) -> list[dict[str, Any]]:
            async with session.post(url, json=[message]) as reply:
                reply.raise_for_status()
                return await reply.json()

        shake = (await send({"channel": "/meta/handshake", "version": "1.0",
                             "supportedConnectionTypes": ["long-polling"]}))[0]
        assert shake.get("successful"), shake
        client = shake["clientId"]
        subscribed = (await send({"channel": "/meta/subscribe", "clientId": client, "subscription": channel,
                                  "ext": {"replay": {channel: replay_id}}}))[0]
        assert subscribed.get("successful"), subscribed
        while True:
            for message in await send({"channel": "/meta/connect", "clientId": client,
                                       "connectionType": "long-polling"}):
                if message.get("channel") == channel:
                    yield message
