"""Wire-level conventions of the emulated Pub/Sub API: replay id bytes, error codes, rpc ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

#: Salesforce's custom error codes, sent as the ``error-code`` trailing metadata (Pub/Sub API
#: Developer Guide, "Handle Errors"), with the gRPC status each is sent with here.
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
AUTH_HEADERS_INVALID = "sfdc.platform.eventbus.grpc.service.auth.headers.invalid"
SERVICE_UNAVAILABLE = "sfdc.platform.eventbus.grpc.service.unavailable"
INTERNAL_ERROR = "sfdc.platform.eventbus.grpc.subscription.internal.error"
TOPIC_NOT_FOUND = "sfdc.platform.eventbus.grpc.topic.not.found"
TOPIC_EMPTY = "sfdc.platform.eventbus.grpc.topic.validation.empty"
TOPIC_PERMISSION = "sfdc.platform.eventbus.grpc.topic.meta.permission"
SCHEMA_EMPTY = "sfdc.platform.eventbus.grpc.schema.validation.failed"
SCHEMA_NOT_FOUND = "sfdc.platform.eventbus.grpc.schema.meta.permission"
REPLAY_ID_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
REPLAY_ID_MISSING = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed"
REQUESTED_EVENTS_INVALID = "sfdc.platform.eventbus.grpc.subscription.fetch.requested.events.invalid"
FETCH_TOPIC_MISMATCH = "sfdc.platform.eventbus.grpc.subscription.fetch.topic.mismatch"
PUBLISH_EVENT_COUNT_INVALID = "sfdc.platform.eventbus.grpc.publish.event.count.invalid"
PUBLISH_TOPIC_MISMATCH = "sfdc.platform.eventbus.grpc.publish.topic.mismatch"
PUBLISH_TOPIC_EMPTY = "sfdc.platform.eventbus.grpc.publish.topic.validation.empty"
MANAGED_ALREADY_ACTIVE = "sfdc.platform.eventbus.grpc.managed.subscription.already.active"
MANAGED_STOPPED = "sfdc.platform.eventbus.grpc.managed.subscription.config.stopped"
MANAGED_NAME_NOT_FOUND = "sfdc.platform.eventbus.grpc.managed.subscription.developer.name.not.found"
MANAGED_ID_NOT_FOUND = "sfdc.platform.eventbus.grpc.managed.subscription.subscription.id.not.found"
MANAGED_ID_INVALID = "sfdc.platform.eventbus.grpc.managed.subscription.subscription.id.invalid"
MANAGED_ID_OR_NAME = "sfdc.platform.eventbus.grpc.managed.subscription.id.or.developer.name.empty"
MANAGED_EVENTS_INVALID = "sfdc.platform.eventbus.grpc.managed.subscription.fetch.request.events.invalid"
MANAGED_COMMIT_RESTRICTED = "sfdc.platform.eventbus.grpc.managed.subscription.fetch.request.commit.request.restricted"

#: Salesforce's replay ids are opaque bytes; the emulator's are the 8-byte big-endian encoding
#: of the event log's integer replay id (the one CometD shows for the same event).
REPLAY_ID_BYTES = 8


def replay_bytes(replay_id: int) -> bytes:
    """The wire form of an event log replay id.

    :param replay_id: the integer id (0 for "nothing yet").
    """
    return max(replay_id, 0).to_bytes(REPLAY_ID_BYTES, "big")


def replay_int(raw: bytes) -> int:
    """The event log replay id behind wire bytes.

    :param raw: a replay id as a client sent it.
    :raises ValueError: not one of ours (wrong length).
    """
    if len(raw) != REPLAY_ID_BYTES:
        raise ValueError(f"a replay id is {REPLAY_ID_BYTES} bytes, got {len(raw)}")
    return int.from_bytes(raw, "big")


def new_rpc_id() -> str:
    """An id for one RPC execution (Salesforce's ``rpc_id``, also in error messages)."""
    return str(uuid.uuid4())


@dataclass(eq=False)  # exceptions stay hashable
class PubSubFault(Exception):
    """An RPC failure as Salesforce reports it: a gRPC status, its ``error-code`` and a message.

    :param status: the gRPC status code's name (``INVALID_ARGUMENT``, ``UNAUTHENTICATED`` ...).
    :param error_code: Salesforce's custom error code (the ``error-code`` trailer).
    :param message: the human message (the rpc id is appended when it is sent).
    """

    status: str
    error_code: str
    message: str

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.error_code}: {self.message}")
