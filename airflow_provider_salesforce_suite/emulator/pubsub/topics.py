"""Pub/Sub topics over the Streaming API's channels, and events in their Pub/Sub wire form.

A topic is the channel of the same name: ``/data/ChangeEvents``, ``/data/<Object>ChangeEvent``
(objects that support Change Data Capture; events only for the selected ones, as on CometD) and
``/event/<Name>__e``. PushTopics (``/topic/``) and generic streaming (``/u/``) are CometD-only,
as on Salesforce. ``/data/ChangeEvents`` carries several entities: its events each name their own
schema, and ``GetTopic`` gives it no schema id (decided here; the documentation is silent).
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import bitmaps
from .schemas import EventSchema, event_schema, to_avro
from .wire import SCHEMA_EMPTY, SCHEMA_NOT_FOUND, TOPIC_EMPTY, TOPIC_NOT_FOUND, PubSubFault

if TYPE_CHECKING:
    from ..metadata import ObjectDef
    from ..streaming.channels import ChannelRouter
    from ..streaming.replay import LoggedEvent

ALL_CHANGE_EVENTS = "/data/ChangeEvents"
_WIRE_KEY = "pubsub"


@dataclass(frozen=True)
class Topic:
    """One topic.

    :param name: the topic name (also the event log's channel).
    :param obj: the platform event or CDC object (``None`` for ``/data/ChangeEvents``).
    :param schema: the topic's schema (``None`` for ``/data/ChangeEvents``).
    """

    name: str
    obj: ObjectDef | None
    schema: EventSchema | None

    @property
    def can_publish(self) -> bool:
        """Only platform event topics take publishes."""
        return self.name.startswith("/event/")

    @property
    def schema_id(self) -> str:
        """The current schema's id (empty for the multi-entity ``/data/ChangeEvents``)."""
        return self.schema.schema_id if self.schema else ""


class TopicCatalog:
    """Resolves topic names and schema ids, and encodes logged events for Pub/Sub subscribers.

    :param router: the Streaming API's channel router (knows the channels and the store).
    """

    def __init__(self, router: ChannelRouter) -> None:
        self.router = router
        self._by_id: dict[str, EventSchema] = {}

    def topic(self, name: str) -> Topic:
        """The topic called ``name``.

        :param name: e.g. ``/event/Order__e``.
        :raises PubSubFault: blank or unknown topic.
        """
        if not name or not name.strip():
            raise PubSubFault("INVALID_ARGUMENT", TOPIC_EMPTY, "The topic name is blank. Provide a topic name.")
        kind = name.split("/")[1] if name.count("/") >= 2 else ""
        if kind not in ("data", "event") or not self.router.exists(name):
            raise PubSubFault("NOT_FOUND", TOPIC_NOT_FOUND, f"The topic {name} does not exist.")
        if name == ALL_CHANGE_EVENTS:
            return Topic(name, None, None)
        obj = self._object_of(name)
        return Topic(name, obj, self._remember(event_schema(obj)))

    def _object_of(self, name: str) -> ObjectDef:
        metadata = self.router.store.metadata
        if name.startswith("/event/"):
            return metadata.require(name[len("/event/"):])
        return metadata.require(self.router.change_event_object(name) or "")

    def _remember(self, schema: EventSchema) -> EventSchema:
        self._by_id[schema.schema_id] = schema
        return schema

    def schema(self, schema_id: str) -> EventSchema:
        """The schema with this id (every platform event's and CDC object's schema is known).

        :param schema_id: a fingerprint from ``GetTopic`` or an event.
        :raises PubSubFault: blank or unknown schema id.
        """
        if not schema_id:
            raise PubSubFault("INVALID_ARGUMENT", SCHEMA_EMPTY, "The schema ID is blank. Provide a schema ID.")
        if schema_id not in self._by_id:
            from ..streaming.channels import cdc_supported

            for obj in self.router.store.metadata.objects.values():
                if obj.kind == "event" or cdc_supported(obj):
                    self._remember(event_schema(obj))
        found = self._by_id.get(schema_id)
        if found is None:
            raise PubSubFault("NOT_FOUND", SCHEMA_NOT_FOUND, f"The schema ID {schema_id} is not valid.")
        return found

    # -- events ---------------------------------------------------------------------------------

    def wire_event(self, event: LoggedEvent) -> tuple[str, str, bytes]:
        """``(event id, schema id, Avro payload)`` of a logged event, encoded once per event.

        :param event: a change event or platform event from the log.
        """
        cached = event.wire.get(_WIRE_KEY)
        if cached is None:
            cached = event.wire[_WIRE_KEY] = self._encode(event)
        return cached

    def _encode(self, event: LoggedEvent) -> tuple[str, str, bytes]:
        from fastavro import schemaless_writer

        data = event.data
        payload = data.get("payload") or {}
        header = payload.get("ChangeEventHeader")
        if header is not None:
            obj = self.router.store.metadata.require(header["entityName"])
            schema = self._remember(event_schema(obj))
            record = _change_record(schema, header, payload)
            # one change is one event on every channel it is logged on: the same id on each
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:change:{header.get('transactionKey')}:{header.get('recordIds')}"))
        else:
            schema = self._schema_of(data)
            record = {name: to_avro(payload.get(name), schema.types[name]) for name in schema.fields}
            if record.get("CreatedDate") is None:
                record["CreatedDate"] = int(event.created_at * 1000)
            record["CreatedById"] = record.get("CreatedById") or ""
            event_id = (data.get("event") or {}).get("EventUuid") or str(uuid.uuid4())
        buffer = io.BytesIO()
        schemaless_writer(buffer, parsed(schema), record)
        return event_id, schema.schema_id, buffer.getvalue()

    def _schema_of(self, data: dict[str, Any]) -> EventSchema:
        return self.schema(str(data.get("schema") or ""))


def parsed(schema: EventSchema) -> Any:
    """fastavro's parsed form of ``schema`` (parsed once).

    :param schema: an event schema.
    """
    cached = getattr(schema, "_parsed", None)
    if cached is None:
        from fastavro import parse_schema

        cached = parse_schema(schema.schema)
        object.__setattr__(schema, "_parsed", cached)
    return cached


def _change_record(schema: EventSchema, header: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ChangeEventHeader": {
            **header,
            "changeOrigin": header.get("changeOrigin") or "",
            "commitUser": header.get("commitUser") or "",
            "changedFields": bitmaps.encode(header.get("changedFields") or (), schema),
            "nulledFields": bitmaps.encode(header.get("nulledFields") or (), schema),
            "diffFields": bitmaps.encode(header.get("diffFields") or (), schema),
        }
    }
    for name in schema.fields[1:]:
        compound = schema.compounds.get(name)
        if compound is None:
            record[name] = to_avro(body.get(name), schema.types[name])
        elif any(flat in body for flat in compound.parts.values()):
            record[name] = {part: to_avro(body.get(flat), schema.types[flat]) for part, flat in compound.parts.items()}
        else:
            record[name] = None
    return record
