"""The Pub/Sub hook's pure parts: replay id text, change event bitmaps, Avro payloads and the schema
check before publishing. (The wire is tested against the emulator in test_pubsub_hook.py.)"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubSchemaError
from airflow_provider_salesforce_suite.hooks._pubsub.avro import AvroSchema, remember_schema
from airflow_provider_salesforce_suite.hooks._pubsub.bitmap import BitmapError, decode_bitmaps, decode_change_header
from airflow_provider_salesforce_suite.hooks._pubsub.events import (
    OUTCOME_UNKNOWN,
    PublishOutcome,
    PubSubEvent,
    decode_replay_id,
    encode_replay_id,
    replay_id_after,
)

NULL_STRING = ["null", "string"]
NAME = {"type": "record", "name": "Name", "fields": [
    {"name": "Salutation", "type": NULL_STRING, "default": None},
    {"name": "FirstName", "type": NULL_STRING, "default": None},
    {"name": "LastName", "type": NULL_STRING, "default": None},
]}
HEADER = {"type": "record", "name": "ChangeEventHeader", "fields": [
    {"name": "entityName", "type": "string"},
    {"name": "changedFields", "type": {"type": "array", "items": "string"}},
    {"name": "nulledFields", "type": {"type": "array", "items": "string"}},
    {"name": "diffFields", "type": {"type": "array", "items": "string"}},
]}
CONTACT = {"type": "record", "name": "ContactChangeEvent", "namespace": "com.sforce.eventbus", "fields": [
    {"name": "ChangeEventHeader", "type": HEADER},              # 0
    {"name": "Name", "type": ["null", NAME], "default": None},  # 1
    {"name": "Email", "type": NULL_STRING, "default": None},    # 2
    {"name": "Phone", "type": NULL_STRING, "default": None},    # 3
    {"name": "Title", "type": NULL_STRING, "default": None},    # 4
]}
ORDER = {"type": "record", "name": "Order_Event__e", "fields": [
    {"name": "CreatedDate", "type": "long", "doc": "CreatedDate:DateTime"},
    {"name": "CreatedById", "type": "string"},
    {"name": "Order_Number__c", "type": NULL_STRING, "default": None},
    {"name": "Amount__c", "type": ["null", "double"], "default": None},
    {"name": "Quantity__c", "type": ["null", "long"], "default": None},
    {"name": "Rush__c", "type": ["null", "boolean"], "default": None},
    {"name": "Ship_By__c", "type": ["null", "long"], "default": None},
]}


# -- replay ids ----------------------------------------------------------------------------------------
def test_replay_id_text_round_trip() -> None:
    raw = (1234567).to_bytes(8, "big")
    text = encode_replay_id(raw)
    assert text == "AAAAAAAS1oc="
    assert decode_replay_id(text) == raw


@pytest.mark.parametrize("bad", ["", "not base64!", "AAA", 42, None])
def test_decode_replay_id_names_the_bad_value(bad) -> None:
    with pytest.raises(ValueError, match=repr(bad) if bad not in ("",) else "non-empty"):
        decode_replay_id(bad)


def test_replay_ids_order_bytewise_when_lengths_match() -> None:
    five, six = (5).to_bytes(8, "big"), (6).to_bytes(8, "big")
    assert replay_id_after(six, five) and not replay_id_after(five, six) and not replay_id_after(five, five)
    assert replay_id_after(five, None)
    assert replay_id_after(b"\x01", five)  # different lengths cannot be ordered: keep the event


def test_event_and_outcome_dicts_are_json_safe() -> None:
    event = PubSubEvent("/event/X__e", b"\x00\x01", "id-1", "sch", {"Blob__c": b"\xff", "N": [b"\x00"]})
    text = json.dumps(event.to_dict())
    back = PubSubEvent.from_dict(json.loads(text))
    assert back.replay_id == b"\x00\x01" and back.payload == {"Blob__c": "/w==", "N": ["AA=="]}
    unknown = PublishOutcome(3, "k", None, OUTCOME_UNKNOWN, "lost")
    assert not unknown.ok and unknown.unknown and unknown.to_dict()["replay_id"] is None
    published = PublishOutcome(0, "k", b"\x07", None, None)
    assert published.ok and published.to_dict()["replay_id"] == "Bw=="
    with pytest.raises(ValueError, match="not a PubSubEvent"):
        PubSubEvent.from_dict({"payload": {}})


# -- bitmaps -------------------------------------------------------------------------------------------
def test_top_level_bitmap_bits_count_from_the_least_significant() -> None:
    # bits 2 and 4: Email, Title
    assert decode_bitmaps(["0x14"], CONTACT) == ["Email", "Title"]
    # more than 8 fields' worth of hex digits still counts from bit 0
    assert decode_bitmaps(["0x0008"], CONTACT) == ["Phone"]


def test_nested_bitmap_names_compound_subfields() -> None:
    # Name (position 1) changed as a whole, then its FirstName (bit 1) and LastName (bit 2)
    assert decode_bitmaps(["0x2", "1-0x06"], CONTACT) == ["Name", "Name.FirstName", "Name.LastName"]


def test_plain_field_names_pass_through_and_empty_is_empty() -> None:
    assert decode_bitmaps(["Email"], CONTACT) == ["Email"]
    assert decode_bitmaps([], CONTACT) == [] and decode_bitmaps(None, CONTACT) == []


@pytest.mark.parametrize("bitmap, message", [
    (["0xZZ"], "not hexadecimal"),
    (["0x40"], "sets bit 6, but the schema has 5 fields"),
    (["9-0x1"], "names field position 9"),
    (["2-0x1"], "'Email', which is not a compound"),
    (["1-0x10"], "sets bit 4, but the schema has 3 fields"),
])
def test_bitmap_that_does_not_fit_the_schema(bitmap, message) -> None:
    with pytest.raises(BitmapError, match=message):
        decode_bitmaps(bitmap, CONTACT)


def test_change_header_bitmaps_decoded_in_place() -> None:
    payload = {"ChangeEventHeader": {"entityName": "Contact", "changedFields": ["0x14"], "nulledFields": ["0x8"],
                                     "diffFields": []}, "Email": "a@b.c"}
    decode_change_header(payload, CONTACT)
    assert payload["ChangeEventHeader"]["changedFields"] == ["Email", "Title"]
    assert payload["ChangeEventHeader"]["nulledFields"] == ["Phone"]
    assert decode_change_header({"Order_Number__c": "1"}, ORDER) == {"Order_Number__c": "1"}


# -- Avro ------------------------------------------------------------------------------------------------
def test_decode_turns_change_event_bitmaps_into_names() -> None:
    import fastavro

    schema = AvroSchema("contact-1", json.dumps(CONTACT))
    record = {"ChangeEventHeader": {"entityName": "Contact", "changedFields": ["0x2", "1-0x04"],
                                    "nulledFields": [], "diffFields": []},
              "Name": {"Salutation": None, "FirstName": None, "LastName": "Lee"}, "Email": None, "Phone": None,
              "Title": None}
    import io

    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(CONTACT), record)
    decoded = schema.decode(out.getvalue())
    assert decoded["Name"]["LastName"] == "Lee"
    assert decoded["ChangeEventHeader"]["changedFields"] == ["Name", "Name.LastName"]


def test_decode_of_a_payload_that_is_not_this_schema() -> None:
    schema = AvroSchema("order-1", json.dumps(ORDER))
    with pytest.raises(SalesforcePubSubSchemaError, match="does not decode with schema order-1"):
        schema.decode(b"\x02")


def test_prepare_fills_defaults_converts_text_and_round_trips() -> None:
    schema = remember_schema("order-rt", json.dumps(ORDER))
    assert remember_schema("order-rt", "not even json") is schema  # cached by schema id
    record = schema.prepare({"Order_Number__c": "A-1", "Amount__c": "12.5", "Quantity__c": "3", "Rush__c": "TRUE",
                             "Ship_By__c": "2026-01-02T03:04:05Z"},
                            where="event 1", defaults={"CreatedDate": 1700000000000, "CreatedById": "005x"})
    assert record == {"CreatedDate": 1700000000000, "CreatedById": "005x", "Order_Number__c": "A-1",
                      "Amount__c": 12.5, "Quantity__c": 3, "Rush__c": True,
                      "Ship_By__c": int(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp() * 1000)}
    assert schema.decode(schema.encode(record)) == record
    # the caller's CreatedDate wins over the default
    own = schema.prepare({"CreatedDate": 5}, where="event 2", defaults={"CreatedDate": 9, "CreatedById": "005x"})
    assert own["CreatedDate"] == 5 and own["Order_Number__c"] is None


@pytest.mark.parametrize("event, message", [
    ({"Colour__c": "red"}, r"event 4 has field 'Colour__c', which the Order_Event__e schema does not have"),
    ({"Amount__c": "lots"}, r"event 4: field 'Amount__c' is 'lots', which is not a double"),
    ({"Amount__c": [1]}, r"event 4 does not fit the Order_Event__e schema: field 'Amount__c' is '\[1\]' \(list\), "
                         r"expected double or null"),
    ({"Order_Number__c": 7}, r"field 'Order_Number__c' is '7' \(int\), expected null or string"),
])
def test_prepare_names_the_field_that_does_not_fit(event, message) -> None:
    schema = AvroSchema("order-2", json.dumps(ORDER))
    with pytest.raises(SalesforcePubSubSchemaError, match=message):
        schema.prepare(event, where="event 4", defaults={"CreatedDate": 1, "CreatedById": "005x"})


def test_prepare_requires_non_nullable_fields_without_default() -> None:
    schema = AvroSchema("order-3", json.dumps(ORDER))
    with pytest.raises(SalesforcePubSubSchemaError, match="no value for 'CreatedById', which the Order_Event__e"):
        schema.prepare({}, where="event 1", defaults={"CreatedDate": 1})


def test_prepare_names_nested_field() -> None:
    schema = AvroSchema("contact-2", json.dumps(CONTACT))
    header = {"entityName": "Contact", "changedFields": [], "nulledFields": [], "diffFields": []}
    with pytest.raises(SalesforcePubSubSchemaError, match=r"field 'Name.FirstName' is '3' \(int\)"):
        schema.prepare({"ChangeEventHeader": header, "Name": {"FirstName": 3}}, where="event 1")


def test_unusable_schema_text() -> None:
    with pytest.raises(SalesforcePubSubSchemaError, match="schema bad-1 is not a usable Avro schema"):
        AvroSchema("bad-1", "{nope")
    with pytest.raises(SalesforcePubSubSchemaError, match="not an Avro record schema"):
        AvroSchema("bad-2", '"string"')
