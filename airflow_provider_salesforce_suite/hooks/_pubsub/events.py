"""What the Pub/Sub hook hands out: events, keepalives and publish outcomes, and the replay id helpers.

Pure Python (no gRPC, no Avro) so triggers can import it cheaply. Replay ids are opaque ``bytes`` on
the wire; in JSON (TriggerEvent payloads, XCom, asset state, results files) they are the standard
base64 text of those bytes (:func:`encode_replay_id` / :func:`decode_replay_id`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

#: How a subscription starts: the tip of the stream, the oldest retained event, or after a replay id.
REPLAY_PRESETS = ("LATEST", "EARLIEST", "CUSTOM")
#: ``PublishOutcome.error_code`` of an event sent without an answer: it may or may not be published.
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
#: ``PublishOutcome.error_code`` of an event refused before sending: it does not fit the topic's schema.
SCHEMA_MISMATCH = "SCHEMA_MISMATCH"


def encode_replay_id(replay_id: bytes) -> str:
    """The base64 text of a replay id (for JSON).

    :param replay_id: the replay id's bytes.
    :raises TypeError: ``replay_id`` is not bytes.
    """
    if not isinstance(replay_id, (bytes, bytearray)):
        raise TypeError(f"a replay id is bytes, got {type(replay_id).__name__}")
    return base64.b64encode(bytes(replay_id)).decode("ascii")


def decode_replay_id(text: str) -> bytes:
    """The bytes of a replay id stored as base64 text.

    :param text: what :func:`encode_replay_id` returned.
    :raises ValueError: naming the value, when it is not non-empty standard base64.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"a stored replay id is non-empty base64 text, got {text!r}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{text!r} is not a replay id (expected the base64 text of its bytes)") from None


def replay_id_after(candidate: bytes, last: bytes | None) -> bool:
    """Whether ``candidate`` comes after ``last`` (True when there is no ``last``, or the lengths differ:
    ids of different lengths cannot be ordered, so the event is kept rather than dropped).

    :param candidate: a delivered event's replay id.
    :param last: the last delivered replay id.
    """
    return last is None or len(candidate) != len(last) or candidate > last


@dataclass(frozen=True)
class PubSubEvent:
    """One delivered event.

    :param topic: the topic it came on (``/data/AccountChangeEvent``, ``/event/Order__e``).
    :param replay_id: its replay id (resume after it with ``replay_preset="CUSTOM"``).
    :param event_id: the publisher's id of the event (``ProducerEvent.id``).
    :param schema_id: the id of the Avro schema its payload was written with.
    :param payload: the decoded Avro record; for change events the ``ChangeEventHeader`` bitmap
        fields (``changedFields``, ``nulledFields``, ``diffFields``) are already field names.
    """

    topic: str
    replay_id: bytes
    event_id: str
    schema_id: str
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """``{"topic", "replay_id" (base64 text), "event_id", "schema_id", "payload"}`` (JSON-safe)."""
        return {"topic": self.topic, "replay_id": encode_replay_id(self.replay_id), "event_id": self.event_id,
                "schema_id": self.schema_id, "payload": _json_safe(self.payload)}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> PubSubEvent:
        """Inverse of :meth:`to_dict`.

        :raises ValueError: a missing key or a replay id that is not base64 text.
        """
        try:
            return cls(topic=str(value["topic"]), replay_id=decode_replay_id(value["replay_id"]),
                       event_id=str(value.get("event_id") or ""), schema_id=str(value.get("schema_id") or ""),
                       payload=dict(value.get("payload") or {}))
        except (KeyError, TypeError, AttributeError):
            raise ValueError(f"not a PubSubEvent dict: {value!r}") from None


def _json_safe(value: Any) -> Any:
    """Avro ``bytes``/``fixed`` values as base64 text; everything else as decoded."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


@dataclass(frozen=True)
class PubSubKeepalive:
    """The server's keepalive: no event for a while (an empty ``FetchResponse``).

    :param latest_replay_id: the newest replay id of the topic the server has seen.
    :param pending_num_requested: events the server may still send before it needs a new request.
    """

    latest_replay_id: bytes
    pending_num_requested: int


@dataclass(frozen=True)
class PublishOutcome:
    """What became of one published event.

    :param index: its position in the input (0-based).
    :param correlation_key: the id it was sent with (``ProducerEvent.id``), echoed by Salesforce.
    :param replay_id: its replay id when published, else None.
    :param error_code: None when published; Salesforce's error code, :data:`OUTCOME_UNKNOWN` (sent, no
        answer: it may or may not be published) or :data:`SCHEMA_MISMATCH` (refused before sending).
    :param error_message: what went wrong, when it did.
    """

    index: int
    correlation_key: str
    replay_id: bytes | None
    error_code: str | None
    error_message: str | None

    @property
    def ok(self) -> bool:
        """Whether the event was published."""
        return self.error_code is None

    @property
    def unknown(self) -> bool:
        """Whether the event was sent without an answer (published or not: nobody knows)."""
        return self.error_code == OUTCOME_UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        """``{"index", "correlation_key", "replay_id" (base64 text or None), "error_code", "error_message"}``."""
        return {"index": self.index, "correlation_key": self.correlation_key,
                "replay_id": encode_replay_id(self.replay_id) if self.replay_id is not None else None,
                "error_code": self.error_code, "error_message": self.error_message}
