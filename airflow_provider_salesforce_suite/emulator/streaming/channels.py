"""Channel kinds and the store listener that turns committed changes into streaming events.

* ``/topic/Name``   PushTopic events (see :mod:`.pushtopic`)
* ``/data/ChangeEvents``, ``/data/<Object>ChangeEvent``  Change Data Capture: the standard objects in
  :data:`CDC_STANDARD_OBJECTS` and every custom object support it (``Foo__c`` -> ``Foo__ChangeEvent``);
  events are published only for the entities selected for CDC (Setup -> Change Data Capture; none
  by default: ``EmulatorConfig.cdc_entities`` or ``POST /__emulator__/streaming/config``)
* ``/event/Name__e``  platform events, published by creating a ``Name__e`` record
* ``/u/Name``       generic streaming (``StreamingChannel`` records, events pushed over REST)
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..pubsub.schemas import CDC_SKIPPED, change_event_name, event_schema
from .hub import StreamingHub
from .pushtopic import PushTopics, Topic, parse_topic
from .replay import DataBuilder

if TYPE_CHECKING:
    from ..metadata import ObjectDef
    from ..store import ChangeEvent, Store

log = logging.getLogger(__name__)

CDC_STANDARD_OBJECTS = frozenset({"Account", "Contact", "Lead", "Opportunity", "Case"})
ALL_CHANGE_EVENTS = "/data/ChangeEvents"
_CDC_TYPES = {"create": "CREATE", "update": "UPDATE", "delete": "DELETE", "undelete": "UNDELETE"}
Item = tuple[str, DataBuilder, frozenset[str]]


def iso_millis(epoch: float) -> str:
    """``2026-11-28T01:02:03.000Z``, the Streaming API's timestamp format.

    :param epoch: seconds since the epoch.
    """
    moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def schema_id(obj: ObjectDef) -> str:
    """The id of the Avro schema of ``obj``'s events, the one the Pub/Sub API serves for them.

    :param obj: a platform event or a CDC-capable object.
    """
    return event_schema(obj).schema_id


def change_event_channel(obj: ObjectDef) -> str:
    """``/data/AccountChangeEvent`` or, for ``Foo__c``, ``/data/Foo__ChangeEvent``.

    :param obj: a CDC-enabled object.
    """
    return f"/data/{change_event_name(obj)}"


def cdc_supported(obj: ObjectDef) -> bool:
    """Whether ``obj`` can be selected for Change Data Capture (it has a change event channel).

    :param obj: the object.
    """
    return obj.name in CDC_STANDARD_OBJECTS or obj.kind == "custom"


def cdc_selection(store: Store, names: Any) -> list[str]:
    """Canonical object names of a CDC entity selection, sorted and without duplicates.

    :param store: the store (metadata).
    :param names: object names (``Account``, ``Invoice__c``) or change event names
        (``AccountChangeEvent``, ``Invoice__ChangeEvent``, as in ``PlatformEventChannelMember``).
    :raises ValueError: not a list of strings, or an entity that does not support CDC.
    """
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError("cdc_entities must be a list of object names")
    selected = set()
    for name in names:
        obj = _cdc_object(store, name)
        if obj is None:
            raise ValueError(f"cdc_entities: {name!r} is not an entity that supports Change Data Capture")
        selected.add(obj.name)
    return sorted(selected)


def _cdc_object(store: Store, name: str) -> ObjectDef | None:
    if name.lower().endswith("changeevent"):  # AccountChangeEvent -> Account, Foo__ChangeEvent -> Foo__c
        base = name[: -len("ChangeEvent")]
        name = base + "c" if base.endswith("__") else base
    obj = store.metadata.get(name)
    return obj if obj is not None and cdc_supported(obj) else None


class ChannelRouter:
    """Knows which channels exist and publishes the events every committed change causes.

    :param store: the one store.
    :param hub: the streaming hub (its config holds the CDC selection).
    :param cdc_entities: the entities selected for CDC at start and after each data reset.
    :raises ValueError: an entity that does not support CDC.
    """

    def __init__(self, store: Store, hub: StreamingHub, cdc_entities: Iterable[str] = ()) -> None:
        self.store = store
        self.hub = hub
        self.topics = PushTopics(store)
        # Salesforce refuses a PushTopic whose Query it cannot run: checked when it is saved.
        store.metadata.require("PushTopic").field("Query").check = lambda soql: parse_topic(
            store, {"Name": "", "Query": soql})
        self._commit_numbers = itertools.count(1)
        self._cdc_channels = {change_event_channel(o): o.name
                              for o in store.metadata.objects.values() if cdc_supported(o)}
        self._configured_cdc = cdc_selection(store, list(cdc_entities))
        self.select_cdc(self._configured_cdc)

    def reset(self) -> None:
        """Forget cached topics (a data reset deleted them); the CDC selection returns to the configured one."""
        self.topics.invalidate()
        self.select_cdc(self._configured_cdc)

    def select_cdc(self, names: Any) -> list[str]:
        """Replace the CDC entity selection (Setup -> Change Data Capture).

        :param names: object or change event names; see :func:`cdc_selection`.
        :returns: the selection's canonical object names.
        :raises ValueError: a bad name; the selection is unchanged.
        """
        selected = cdc_selection(self.store, names)
        self.hub.config.cdc_entities = selected
        self._cdc_selected = frozenset(selected)
        return selected

    def cdc_selected(self, sobject: str) -> bool:
        """Whether changes of ``sobject`` publish change events.

        :param sobject: a canonical object name.
        """
        return sobject in self._cdc_selected

    def wants(self, sobject: str) -> bool:
        """The store's interest check: whether a change of ``sobject`` can cause any event (platform
        events, CDC-selected entities, objects with an active PushTopic, PushTopic itself).

        :param sobject: a canonical object name.
        """
        if sobject in self._cdc_selected or sobject == "PushTopic":
            return True
        obj = self.store.metadata.get(sobject)
        return obj is not None and (obj.kind == "event" or self.topics.watches(obj.name))

    # -- which channels exist -------------------------------------------------------------

    def exists(self, channel: str) -> bool:
        """Whether a subscription to ``channel`` can succeed.

        :param channel: e.g. ``/topic/Accounts``, ``/data/ChangeEvents``, ``/event/Order__e``, ``/u/Feed``.
        """
        kind, _, name = channel[1:].partition("/")
        if kind == "topic":
            return self.topics.exists(name)
        if kind == "data":
            return channel == ALL_CHANGE_EVENTS or channel in self._cdc_channels
        if kind == "event":
            obj = self.store.metadata.get(name)
            return obj is not None and obj.kind == "event" and obj.name == name
        if kind == "u":
            return self.streaming_channel_id(channel) is not None
        return False

    def change_event_object(self, channel: str) -> str | None:
        """The object whose change events ``channel`` carries (``/data/AccountChangeEvent`` -> ``Account``).

        :param channel: a ``/data/...ChangeEvent`` channel.
        """
        return self._cdc_channels.get(channel)

    def streaming_channel_id(self, channel: str) -> str | None:
        """The id of the ``StreamingChannel`` record named ``channel``.

        :param channel: ``/u/Name``.
        """
        literal = channel.replace("\\", "\\\\").replace("'", "\\'")
        records = self.store.query(f"SELECT Id FROM StreamingChannel WHERE Name = '{literal}'", api_version="66.0")
        return records["records"][0]["Id"] if records["records"] else None

    # -- the store listener -----------------------------------------------------------------

    def on_change(self, change: ChangeEvent) -> None:
        """Store listener: publish the events ``change`` causes (any thread; never raises into the store).

        :param change: a committed record change.
        """
        try:
            items = self.items_for(change)
        except Exception:  # a broken event must not fail the write that caused it
            log.exception("streaming events for %s %s failed", change.operation, change.sobject)
            return
        self.hub.publish_threadsafe(items)

    def items_for(self, change: ChangeEvent) -> list[Item]:
        """``(channel, data builder, user ids)`` for every event ``change`` causes.

        :param change: a committed record change.
        """
        obj = self.store.metadata.require(change.sobject)
        if obj.kind == "event":
            return [self._platform_event(obj, change)] if change.operation == "create" else []
        items = [self._topic_event(topic, kind, sobject) for topic, kind, sobject in self.topics.events(change)]
        if obj.name in self._cdc_selected:
            items += self._change_events(obj, change)
        return items

    @staticmethod
    def _topic_event(topic: Topic, kind: str, sobject: dict[str, Any]) -> Item:
        def build(replay_id: int, created: float) -> dict[str, Any]:
            return {"event": {"createdDate": iso_millis(created), "replayId": replay_id, "type": kind},
                    "sobject": sobject}

        return topic.channel, build, frozenset()

    def _change_events(self, obj: ObjectDef, change: ChangeEvent) -> list[Item]:
        record = change.record
        if change.operation == "update":
            changed = [f for f in change.changed_fields if f not in CDC_SKIPPED]
            if "LastModifiedDate" in obj.fields and "LastModifiedDate" not in changed:
                changed.append("LastModifiedDate")
            body = {f: record.get(f) for f in changed}
            nulled = [f for f in changed if record.get(f) is None]
        elif change.operation == "delete":
            changed, body, nulled = [], {}, []
        else:
            changed, nulled = [], []
            body = {f: v for f, v in record.items() if v is not None and f not in CDC_SKIPPED}
        commit_number = next(self._commit_numbers)
        transaction_key = str(uuid.uuid4())
        schema = schema_id(obj)

        def build(replay_id: int, created: float) -> dict[str, Any]:
            header = {
                "entityName": obj.name, "recordIds": [change.record_id], "changeType": _CDC_TYPES[change.operation],
                "changeOrigin": "", "transactionKey": transaction_key, "sequenceNumber": 1,
                "commitTimestamp": int(created * 1000), "commitNumber": commit_number,
                "commitUser": record.get("LastModifiedById") or record.get("CreatedById"),
                "nulledFields": nulled, "diffFields": [], "changedFields": changed,
            }
            return {"schema": schema, "payload": {"ChangeEventHeader": header, **body},
                    "event": {"replayId": replay_id}}

        return [(ALL_CHANGE_EVENTS, build, frozenset()), (change_event_channel(obj), build, frozenset())]

    @staticmethod
    def _platform_event(obj: ObjectDef, change: ChangeEvent) -> Item:
        record = change.record
        payload = {name: record.get(name) for name, fdef in obj.fields.items() if fdef.custom}
        payload.update(CreatedDate=record.get("CreatedDate"), CreatedById=record.get("CreatedById"))
        schema = schema_id(obj)

        def build(replay_id: int, created: float) -> dict[str, Any]:
            return {"schema": schema, "payload": payload,
                    "event": {"replayId": replay_id, "EventUuid": str(uuid.uuid4())}}

        return f"/event/{obj.name}", build, frozenset()

    @staticmethod
    def generic_event(channel: str, payload: str, user_ids: frozenset[str]) -> Item:
        """A generic streaming event (``StreamingChannel`` push).

        :param channel: ``/u/Name``.
        :param payload: the pushed string.
        :param user_ids: deliver only to these users (empty: everyone subscribed).
        """
        def build(replay_id: int, created: float) -> dict[str, Any]:
            return {"event": {"createdDate": iso_millis(created), "replayId": replay_id}, "payload": payload}

        return channel, build, user_ids


ROUTER_KEY: web.AppKey[ChannelRouter] = web.AppKey("emulator_streaming_router")
