"""Pub/Sub API: GetTopic, GetSchema and authentication, with raw stubs over TLS on loopback."""

from __future__ import annotations

import json

import grpc
import pytest
from pubsub_support import EVENT_TOPIC, PubSub, pb2, start_server, trailers


def test_get_topic_for_a_platform_event(ps):
    info = ps.topic(EVENT_TOPIC)
    assert info.topic_name == EVENT_TOPIC
    assert info.tenant_guid == ps.tenant and len(info.tenant_guid) == 18
    assert info.can_publish and info.can_subscribe
    assert len(info.schema_id) == 22 and info.rpc_id


@pytest.mark.parametrize("topic", ["/data/AccountChangeEvent", "/data/Invoice__ChangeEvent", "/data/ChangeEvents"])
def test_change_event_topics_cannot_be_published_to(ps, topic):
    info = ps.topic(topic)
    assert info.can_subscribe and not info.can_publish
    assert (info.schema_id == "") == (topic == "/data/ChangeEvents")  # the multi-entity channel has no one schema


def test_platform_event_schema_has_salesforces_shape(ps):
    info = ps.topic(EVENT_TOPIC)
    schema = json.loads(ps.schema(info.schema_id))
    assert schema["type"] == "record" and schema["name"] == "Order_Shipped__e"
    assert schema["namespace"] == "com.sforce.eventbus"
    fields = {f["name"]: f for f in schema["fields"]}
    assert list(fields)[:2] == ["CreatedDate", "CreatedById"]
    assert fields["CreatedDate"]["type"] == "long" and fields["CreatedById"]["type"] == "string"
    assert fields["OrderNumber__c"] == {"name": "OrderNumber__c", "type": ["null", "string"], "default": None}
    assert fields["Amount__c"]["type"] == ["null", "double"] and fields["Rush__c"]["type"] == ["null", "boolean"]


def test_change_event_schema_has_the_header_and_compound_fields(ps):
    schema = json.loads(ps.schema(ps.topic("/data/ContactChangeEvent").schema_id))
    assert schema["name"] == "ContactChangeEvent"
    first = schema["fields"][0]
    assert first["name"] == "ChangeEventHeader"
    header = {f["name"]: f["type"] for f in first["type"]["fields"]}
    assert list(header) == ["entityName", "recordIds", "changeType", "changeOrigin", "transactionKey",
                            "sequenceNumber", "commitTimestamp", "commitNumber", "commitUser", "nulledFields",
                            "diffFields", "changedFields"]
    assert header["changeType"]["type"] == "enum" and header["changeType"]["symbols"][:4] == [
        "CREATE", "UPDATE", "DELETE", "UNDELETE"]
    assert header["changedFields"] == {"type": "array", "items": "string"}
    fields = {f["name"]: f for f in schema["fields"][1:]}
    assert "Id" not in fields and "FirstName" not in fields  # Id is in recordIds; FirstName is inside Name
    name = fields["Name"]["type"]
    assert name[0] == "null" and name[1]["type"] == "record"
    assert [f["name"] for f in name[1]["fields"]] == ["Salutation", "FirstName", "LastName"]
    mailing = fields["MailingAddress"]["type"][1]
    assert mailing["name"] == "Address" and [f["name"] for f in mailing["fields"]][:2] == ["Street", "City"]
    assert fields["Email"] == {"name": "Email", "type": ["null", "string"], "default": None}
    assert fields["LastModifiedDate"]["type"] == ["null", "long"]


def test_schema_id_is_a_stable_fingerprint(ps):
    first = ps.topic("/data/AccountChangeEvent").schema_id
    assert ps.topic("/data/AccountChangeEvent").schema_id == first
    assert first != ps.topic("/data/ContactChangeEvent").schema_id
    schema_info = ps.stub.GetSchema(pb2.SchemaRequest(schema_id=first), metadata=ps.metadata())
    assert schema_info.schema_id == first and schema_info.rpc_id


def test_unknown_topic_and_schema(ps):
    for name in ("/event/Nope__e", "/topic/SomePushTopic", "/data/NopeChangeEvent", "Order_Shipped__e"):
        with pytest.raises(grpc.RpcError) as caught:
            ps.topic(name)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert trailers(caught.value)["error-code"] == "sfdc.platform.eventbus.grpc.topic.not.found"
        assert name in caught.value.details() and "rpcId: " in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        ps.topic("")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(caught.value)["error-code"] == "sfdc.platform.eventbus.grpc.topic.validation.empty"
    with pytest.raises(grpc.RpcError) as caught:
        ps.schema("AAAAAAAAAAAAAAAAAAAAAA")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert trailers(caught.value)["error-code"] == "sfdc.platform.eventbus.grpc.schema.meta.permission"


def _call(ps, **metadata):
    with pytest.raises(grpc.RpcError) as caught:
        ps.stub.GetTopic(pb2.TopicRequest(topic_name=EVENT_TOPIC), metadata=ps.metadata(**metadata), timeout=10)
    return caught.value


def test_unknown_or_expired_session_is_unauthenticated(ps):
    error = _call(ps, accesstoken="00D000000000001!AQbogus")
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert trailers(error)["error-code"] == "sfdc.platform.eventbus.grpc.service.auth.error"
    assert "bogus" not in error.details()  # no token in the message
    assert ps.sf.admin("POST", "sessions/expire").status_code == 200
    error = _call(ps)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ps.token not in error.details()


def test_missing_headers_are_unauthenticated(ps):
    for header in ("accesstoken", "instanceurl", "tenantid"):
        error = _call(ps, **{header: None})
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert trailers(error)["error-code"] == "sfdc.platform.eventbus.grpc.service.auth.headers.invalid"
        assert header in error.details()


def test_another_orgs_tenant_is_permission_denied(ps):
    error = _call(ps, tenantid="00D000000000002AAA")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "00D000000000002AAA" in error.details()
    assert ps.topic(EVENT_TOPIC)  # the 18-character org id works ...
    assert ps.stub.GetTopic(pb2.TopicRequest(topic_name=EVENT_TOPIC),  # ... and so does the 15-character one
                            metadata=ps.metadata(tenantid=ps.tenant[:15])).can_publish


def test_plaintext_with_no_tls(tmp_path_factory):
    server = start_server(tmp_path_factory, tls=False)
    try:
        assert server.url.startswith("http://") and server.ca_bundle is None
        client = PubSub(server)
        assert client.topic(EVENT_TOPIC).can_publish
        assert json.loads(server.connection_json())["extra"]["pubsub_endpoint"] == server.pubsub_endpoint
        client.close()
    finally:
        server.stop()


def test_the_session_fixture_serves_pubsub(salesforce_emulator):
    endpoint = salesforce_emulator.pubsub_endpoint
    assert endpoint and endpoint.startswith("127.0.0.1:")
    assert json.loads(salesforce_emulator.connection_json())["extra"]["pubsub_endpoint"] == endpoint
    assert "pubsub_endpoint=127.0.0.1%3A" in salesforce_emulator.connection_uri()
    client = PubSub(salesforce_emulator)
    try:
        assert client.topic("/data/ChangeEvents").tenant_guid == client.tenant
    finally:
        client.close()
