"""Publishing platform events: ``Publish`` and each request of ``PublishStream``.

Each event's payload is decoded with the topic's schema (its ``schema_id`` must be the topic's),
then created as a record of the platform event, exactly as a REST/SOAP/Bulk insert would be: the
store validates the values and its listener logs the event on the Streaming API's channel, so
CometD subscribers see it too. Results come per event, in order; a bad event fails alone.
``CreatedDate`` and ``CreatedById`` are set by the server, as Salesforce does.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SalesforceApiError
from .schemas import from_avro
from .topics import Topic, parsed
from .wire import PUBLISH_EVENT_COUNT_INVALID, TOPIC_PERMISSION, PubSubFault

if TYPE_CHECKING:
    from ..sessions import Session
    from .service import PubSubService

_SERVER_FIELDS = ("CreatedDate", "CreatedById")


@dataclass
class Outcome:
    """One event's publish result.

    :param correlation_key: the publisher's ``ProducerEvent.id``.
    :param replay_id: the event's replay id (``None`` when it failed).
    :param error: why it failed.
    """

    correlation_key: str
    replay_id: int | None
    error: str | None = None


def publishable(service: PubSubService, topic_name: str) -> Topic:
    """The topic of a publish request, if it takes publishes.

    :param service: the Pub/Sub service.
    :param topic_name: the request's topic.
    :raises PubSubFault: unknown topic, or one that is not a platform event's.
    """
    topic = service.catalog.topic(topic_name)
    if not topic.can_publish:
        raise PubSubFault("PERMISSION_DENIED", TOPIC_PERMISSION,
                          f"Publishing to {topic_name} is not allowed: only platform event topics take publishes.")
    return topic


def publish(service: PubSubService, session: Session, topic: Topic, events: list[Any]) -> list[Outcome]:
    """Publish ``events`` (``ProducerEvent`` messages) to ``topic``; one outcome per event.

    Runs on the loop thread, where the hub logs the events synchronously, so the new events'
    replay ids are read straight from the log.

    :param service: the Pub/Sub service.
    :param session: the publisher's session (the events' CreatedById).
    :param topic: a publishable topic.
    :param events: the request's events.
    :raises PubSubFault: no events.
    """
    if not events:
        raise PubSubFault("INVALID_ARGUMENT", PUBLISH_EVENT_COUNT_INVALID, "The publish request has no events.")
    assert topic.obj is not None and topic.schema is not None
    outcomes = [Outcome(event.id, None) for event in events]
    rows: list[tuple[int, dict[str, Any]]] = []
    for index, event in enumerate(events):
        try:
            rows.append((index, _values(topic, event)))
        except ValueError as exc:
            outcomes[index].error = str(exc)
    if rows:
        log = service.hub.log(topic.name)
        before = log.last_id
        results = service.state.store.create_many(topic.obj.name, [values for _, values in rows],
                                                  user_id=session.user_id)
        logged = log.after(before, len(rows))
        published = iter(logged)
        for (index, _), result in zip(rows, results):
            if not result.success:
                outcomes[index].error = "; ".join(_describe(e) for e in result.errors) or "The event was not published."
                continue
            event = next(published, None)
            if event is None:  # the log did not take it (should not happen on the loop thread)
                outcomes[index].error = "The event was not published: the event bus did not log it."
                continue
            if events[index].id:  # subscribers see the publisher's id as the event's id
                event.data.setdefault("event", {})["EventUuid"] = events[index].id
            outcomes[index].replay_id = event.replay_id
    service.counters["events_published"] += sum(1 for o in outcomes if o.error is None)
    return outcomes


def _values(topic: Topic, event: Any) -> dict[str, Any]:
    from fastavro import schemaless_reader

    schema = topic.schema
    assert schema is not None
    if event.schema_id != schema.schema_id:
        raise ValueError(f"The event's schema ID {event.schema_id or '(blank)'} does not match the schema ID "
                         f"{schema.schema_id} of {topic.name}.")
    buffer = io.BytesIO(event.payload)
    try:
        record = schemaless_reader(buffer, parsed(schema), None)
    except Exception as exc:  # fastavro raises many types for bad bytes
        raise ValueError(f"The event payload is not valid Avro for schema {schema.schema_id}: {exc}") from None
    if buffer.tell() != len(event.payload) or not isinstance(record, dict):
        raise ValueError(f"The event payload is not valid Avro for schema {schema.schema_id}: "
                         f"{len(event.payload) - buffer.tell()} bytes left over.")
    return {name: from_avro(value, schema.types[name]) for name, value in record.items()
            if name not in _SERVER_FIELDS and value is not None}


def _describe(error: Any) -> str:
    if isinstance(error, SalesforceApiError):
        return f"{error.error_code}: {error.message}"
    return str(error)
