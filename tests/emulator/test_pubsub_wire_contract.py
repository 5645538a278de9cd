"""The bundled ``pubsub_api.proto`` against Salesforce's documented contract (Pub/Sub API
Developer Guide, "RPC Methods" and the message reference): every message's field names, numbers,
types and cardinality, the enums, and the six RPCs with their streaming shapes. A client generated
from Salesforce's own proto talks to ours only if all of this matches."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from pubsub_support import pb2

PACKAGE = "eventbus.v1"
# message -> [(field, number, type, repeated)]; a type is a scalar name or a message/enum name
MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "TopicInfo": [("topic_name", 1, "string", False), ("tenant_guid", 2, "string", False),
                  ("can_publish", 3, "bool", False), ("can_subscribe", 4, "bool", False),
                  ("schema_id", 5, "string", False), ("rpc_id", 6, "string", False)],
    "TopicRequest": [("topic_name", 1, "string", False)],
    "EventHeader": [("key", 1, "string", False), ("value", 2, "bytes", False)],
    "ProducerEvent": [("id", 1, "string", False), ("schema_id", 2, "string", False), ("payload", 3, "bytes", False),
                      ("headers", 4, "EventHeader", True)],
    "ConsumerEvent": [("event", 1, "ProducerEvent", False), ("replay_id", 2, "bytes", False)],
    "PublishResult": [("replay_id", 1, "bytes", False), ("error", 2, "Error", False),
                      ("correlation_key", 3, "string", False)],
    "Error": [("code", 1, "ErrorCode", False), ("msg", 2, "string", False)],
    "FetchRequest": [("topic_name", 1, "string", False), ("replay_preset", 2, "ReplayPreset", False),
                     ("replay_id", 3, "bytes", False), ("num_requested", 4, "int32", False),
                     ("auth_refresh", 5, "string", False)],
    "FetchResponse": [("events", 1, "ConsumerEvent", True), ("latest_replay_id", 2, "bytes", False),
                      ("rpc_id", 3, "string", False), ("pending_num_requested", 4, "int32", False)],
    "SchemaRequest": [("schema_id", 1, "string", False)],
    "SchemaInfo": [("schema_json", 1, "string", False), ("schema_id", 2, "string", False),
                   ("rpc_id", 3, "string", False)],
    "PublishRequest": [("topic_name", 1, "string", False), ("events", 2, "ProducerEvent", True),
                       ("auth_refresh", 3, "string", False)],
    "PublishResponse": [("results", 1, "PublishResult", True), ("schema_id", 2, "string", False),
                        ("rpc_id", 3, "string", False)],
    "ManagedFetchRequest": [("subscription_id", 1, "string", False), ("developer_name", 2, "string", False),
                            ("num_requested", 3, "int32", False), ("auth_refresh", 4, "string", False),
                            ("commit_replay_id_request", 5, "CommitReplayRequest", False)],
    "ManagedFetchResponse": [("events", 1, "ConsumerEvent", True), ("latest_replay_id", 2, "bytes", False),
                             ("rpc_id", 3, "string", False), ("pending_num_requested", 4, "int32", False),
                             ("commit_response", 5, "CommitReplayResponse", False)],
    "CommitReplayRequest": [("commit_request_id", 1, "string", False), ("replay_id", 2, "bytes", False)],
    "CommitReplayResponse": [("commit_request_id", 1, "string", False), ("replay_id", 2, "bytes", False),
                             ("error", 3, "Error", False), ("process_time", 4, "int64", False)],
}
ENUMS = {"ErrorCode": {"UNKNOWN": 0, "PUBLISH": 1, "COMMIT": 2},
         "ReplayPreset": {"LATEST": 0, "EARLIEST": 1, "CUSTOM": 2}}
# rpc -> (request, client streams, response, server streams)
RPCS = {
    "Subscribe": ("FetchRequest", True, "FetchResponse", True),
    "GetSchema": ("SchemaRequest", False, "SchemaInfo", False),
    "GetTopic": ("TopicRequest", False, "TopicInfo", False),
    "Publish": ("PublishRequest", False, "PublishResponse", False),
    "PublishStream": ("PublishRequest", True, "PublishResponse", True),
    "ManagedSubscribe": ("ManagedFetchRequest", True, "ManagedFetchResponse", True),
}
_SCALARS = {FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BOOL: "bool",
            FieldDescriptor.TYPE_BYTES: "bytes", FieldDescriptor.TYPE_INT32: "int32",
            FieldDescriptor.TYPE_INT64: "int64"}


def _type(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        assert field.message_type.full_name.startswith(PACKAGE + ".")
        return field.message_type.name
    if field.enum_type is not None:
        assert field.enum_type.full_name.startswith(PACKAGE + ".")
        return field.enum_type.name
    return _SCALARS.get(field.type, f"type#{field.type}")


def _repeated(field: FieldDescriptor) -> bool:
    is_repeated = getattr(field, "is_repeated", None)  # protobuf >= 5 (label is gone in 7)
    return bool(is_repeated) if is_repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED


def test_package_and_every_message_field():
    file = pb2.DESCRIPTOR
    assert file.package == PACKAGE
    assert set(file.message_types_by_name) == set(MESSAGES)
    for name, expected in MESSAGES.items():
        message = file.message_types_by_name[name]
        actual = [(f.name, f.number, _type(f), _repeated(f)) for f in message.fields]
        assert actual == expected, name
        assert not message.oneofs, f"{name} has no oneof in Salesforce's contract"


def test_enums():
    file = pb2.DESCRIPTOR
    assert {name: {v.name: v.number for v in enum.values} for name, enum in file.enum_types_by_name.items()} == ENUMS


def test_service_and_streaming_shapes():
    [service] = pb2.DESCRIPTOR.services_by_name.values()
    assert service.full_name == "eventbus.v1.PubSub"
    shapes = {m.name: (m.input_type.name, m.client_streaming, m.output_type.name, m.server_streaming)
              for m in service.methods}
    assert shapes == RPCS


def test_wire_bytes_of_a_message_built_by_field_number():
    # A FetchRequest hand-encoded by field numbers (what any client of Salesforce's proto sends).
    raw = bytes([0x0A, 3]) + b"/t/" + bytes([0x10, 2, 0x1A, 1, 0x07, 0x20, 5])
    request = pb2.FetchRequest.FromString(raw)
    assert (request.topic_name, request.replay_preset, request.replay_id, request.num_requested) == (
        "/t/", pb2.CUSTOM, b"\x07", 5)
