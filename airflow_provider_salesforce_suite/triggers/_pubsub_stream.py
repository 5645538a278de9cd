"""The shared Pub/Sub stream behind :class:`~.pubsub.SalesforcePubSubEventTrigger` (Airflow ack mode).

The mechanism is :class:`~._event_stream.SharedReplayProducer`'s; what differs from CometD:

* a replay id is opaque ``bytes``, stored in the asset state store as base64 text; two ids of the
  same length order bytewise (Salesforce's ids are fixed-length big-endian counters), ids of
  different lengths cannot be ordered and the subscription then replays everything retained;
* a subscription starts from a preset (``LATEST`` / ``EARLIEST``) or ``CUSTOM`` after a replay id;
* a keepalive (an empty ``FetchResponse``) carries the stream's latest replay id: it travels the
  shared stream as a position-only item and is committed once the events before it are, so the
  stored id stays within Salesforce's retention on a quiet topic;
* with a managed subscription, Salesforce keeps the position: the producer sends
  ``CommitReplayRequest`` (instead of writing asset state) once Airflow persisted the events.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from airflow_provider_salesforce_suite.triggers._event_stream import SalesforceStreamAdvanceError, SharedReplayProducer
from airflow_provider_salesforce_suite.triggers._pacing import pacing_from

log = logging.getLogger(__name__)

#: Start presets for an asset with no stored replay id.
START_PRESETS = ("LATEST", "EARLIEST")


def pubsub_state_key(topic: str) -> str:
    """Key of a Pub/Sub topic's last committed replay id (base64) in an asset's state store.

    :param topic: the Pub/Sub topic (``/data/...`` or ``/event/...``).
    """
    return f"salesforce.pubsub.replay_id:{topic}"


def describe_position(position: Any) -> str:
    """A start position ``(preset, replay_id)`` or a replay id as text (replay ids in base64)."""
    from airflow_provider_salesforce_suite.hooks._pubsub.events import encode_replay_id

    if isinstance(position, tuple):
        preset, replay_id = position
        return preset if replay_id is None else f"after replay id {encode_replay_id(replay_id)}"
    if isinstance(position, bytes):
        return encode_replay_id(position)
    return str(position)


async def subscribe_from(hook: Any, topic: str, *, replay_preset: str, replay_id: bytes | None, batch_size: int,
                         on_replay_gap: str, keepalives: bool = False) -> AsyncIterator[Any]:
    """``hook.subscribe`` with the gap policy: a replay id Salesforce no longer retains replays
    every retained event (``on_replay_gap="earliest"``, logged) or raises.

    :param hook: a ``SalesforcePubSubHook``.
    :param topic: the topic.
    :param replay_preset: ``LATEST``, ``EARLIEST`` or ``CUSTOM``.
    :param replay_id: the replay id to resume after (``CUSTOM``).
    :param batch_size: ``num_requested`` per fetch.
    :param on_replay_gap: ``"fail"`` or ``"earliest"``.
    :param keepalives: also yield ``PubSubKeepalive`` (empty fetch responses' latest replay id).
    :raises SalesforcePubSubReplayIdError: the replay id is not retained and the policy is ``"fail"``.
    """
    from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubReplayIdError

    while True:
        try:
            async with aclosing(hook.subscribe(topic, replay_preset=replay_preset, replay_id=replay_id,
                                               batch_size=batch_size, keepalives=keepalives)) as stream:
                async for event in stream:
                    yield event
            return
        except SalesforcePubSubReplayIdError as exc:
            if on_replay_gap != "earliest" or replay_preset == "EARLIEST":
                raise
            # Events between that id and the oldest retained one are gone; the rest are replayed
            # (duplicates are allowed, losing more is not).
            log.warning("Replay id %s of %s is no longer retained (%s); replaying every retained event",
                        describe_position(replay_id), topic, exc)
            replay_preset, replay_id = "EARLIEST", None


class PubSubReplayProducer(SharedReplayProducer):
    """One ``Subscribe`` stream per group; replay ids stored base64 in each asset's state.

    :param kwargs: the serialized kwargs of one trigger of the group (the shared-stream key's
        fields: connection id, endpoint, topic, start preset, gap policy, batch size).
    """

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.conn_id: str = kwargs["salesforce_conn_id"]
        self.topic: str = kwargs.get("topic") or ""
        self.api_version: str | None = kwargs.get("api_version")
        self.pubsub_endpoint: str | None = kwargs.get("pubsub_endpoint")
        self.replay_preset: str = kwargs.get("replay_preset", "LATEST")
        self.on_replay_gap: str = kwargs.get("on_replay_gap", "earliest")
        self.batch_size: int = kwargs.get("batch_size", 100)
        super().__init__(self.topic, pubsub_state_key(self.topic), pacing_from(kwargs))

    def hook(self) -> Any:
        """A Pub/Sub hook on the group's connection (one per poll)."""
        from airflow_provider_salesforce_suite.hooks.pubsub import SalesforcePubSubHook

        return SalesforcePubSubHook(self.conn_id, api_version=self.api_version, pubsub_endpoint=self.pubsub_endpoint)

    def load_replay_id(self, stored: Any) -> bytes | None:
        from airflow_provider_salesforce_suite.hooks._pubsub.events import decode_replay_id

        try:
            return decode_replay_id(stored) if isinstance(stored, str) else None
        except ValueError:
            log.warning("Ignoring the stored value of %s: not a base64 replay id (%r)", self.state_key, stored)
            return None

    def dump_replay_id(self, replay_id: bytes) -> str:
        from airflow_provider_salesforce_suite.hooks._pubsub.events import encode_replay_id

        return encode_replay_id(replay_id)

    def compare_replay_ids(self, left: bytes, right: bytes) -> int | None:
        if len(left) != len(right):
            return None
        return (left > right) - (left < right)

    def describe(self, replay_id: Any) -> str:
        return describe_position(replay_id)

    def batch_header(self, replay_id: bytes) -> dict[str, Any]:
        # The topic as the batch's events label it ("" for a managed subscription named without one).
        return {"topic": self.topic, "replay_id": self.dump_replay_id(replay_id)}

    def split(self, delivered: Any) -> tuple[Any, bytes]:
        # A keepalive (empty FetchResponse) carries the stream's position only.
        latest = getattr(delivered, "latest_replay_id", None)
        return (None, latest) if latest is not None else (delivered, delivered.replay_id)

    @staticmethod
    def is_position(delivered: Any) -> bool:
        """Whether to pass ``delivered`` on: every event, and the keepalives that name a position
        while requests are outstanding (the server then has nothing older left to send)."""
        if not hasattr(delivered, "latest_replay_id"):
            return True
        return bool(delivered.latest_replay_id) and delivered.pending_num_requested > 0

    def resume_after(self, replay_id: bytes) -> tuple[str, bytes | None]:
        return "CUSTOM", replay_id

    def policy_start(self) -> tuple[str, bytes | None]:
        return self.replay_preset, None

    def unordered_start(self) -> tuple[str, bytes | None]:
        return "EARLIEST", None

    async def events(self) -> AsyncIterator[Any]:
        """``Subscribe`` from the oldest stored replay id (or the preset)."""
        preset, replay_id = self.start_position()
        hook = self.hook()
        try:
            async with aclosing(subscribe_from(hook, self.topic, replay_preset=preset, replay_id=replay_id,
                                               batch_size=self.batch_size, on_replay_gap=self.on_replay_gap,
                                               keepalives=True)) as stream:
                async for delivered in stream:
                    if self.is_position(delivered):
                        yield delivered
        finally:
            await hook.aclose()


class ManagedSubscriptionProducer(PubSubReplayProducer):
    """One ``ManagedSubscribe`` stream per group; Salesforce keeps the position.

    Salesforce starts the stream after the subscription's last committed replay id, so nothing is
    read from the asset state stores; :meth:`persist_position` sends ``CommitReplayRequest`` on
    the open stream once Airflow persisted the events up to the replay id.

    :param kwargs: the serialized kwargs of one trigger of the group.
    """

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        super().__init__(kwargs)
        self.subscription: str = kwargs["managed_subscription"]
        self.source = f"managed subscription {self.subscription}"
        self._stream: Any = None

    def load_replay_id(self, stored: Any) -> None:
        return None  # the position lives on Salesforce

    def policy_start(self) -> tuple[str, None]:
        return "MANAGED", None

    async def events(self) -> AsyncIterator[Any]:
        self.start_position()
        hook = self.hook()
        try:
            async with hook.managed_subscribe(self.subscription, batch_size=self.batch_size, topic=self.topic,
                                              keepalives=True) as stream:
                self._stream = stream
                try:
                    async for delivered in stream:
                        if self.is_position(delivered):
                            yield delivered
                finally:
                    self._stream = None
        finally:
            await hook.aclose()

    async def persist_position(self, replay_id: bytes) -> None:
        """Commit ``replay_id`` to the managed subscription (on its open stream).

        :raises SalesforceStreamAdvanceError: the stream is gone (the group restarts; Salesforce
            redelivers after its last commit).
        """
        if self._stream is None:
            raise SalesforceStreamAdvanceError(
                f"{self.source} closed before replay id {describe_position(replay_id)} could be committed")
        await self._stream.commit(replay_id)
