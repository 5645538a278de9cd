"""Pub/Sub API change events: Avro records in Salesforce's shape, and the changedFields /
nulledFields bitmaps, decoded here by a small decoder written from Salesforce's documentation
(independent of the emulator's encoder)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from pubsub_support import PubSub, records_of
from sf_emulator_client import V


def decode_bitmap(entries: list[str], schema: dict) -> set[str]:
    """Field names behind a bitmap field: ``0x..`` over top-level positions (bit i = field i),
    ``N-0x..`` over the fields of the nested record at top-level position N (``Parent.Child``)."""
    fields = schema["fields"]
    names: set[str] = set()
    for entry in entries:
        parent, _, bitmap = entry.rpartition("-")
        bits = int(bitmap, 16)
        if parent:
            nested = next(t for t in fields[int(parent)]["type"] if isinstance(t, dict))
            scope, prefix = nested["fields"], fields[int(parent)]["name"] + "."
        else:
            scope, prefix = fields, ""
        names |= {prefix + scope[i]["name"] for i in range(bits.bit_length()) if bits >> i & 1}
    return names


@pytest.fixture(autouse=True)
def _cdc(ps: PubSub) -> None:
    assert ps.sf.admin("POST", "streaming/config", {"cdc_entities": ["Contact", "Invoice__c"]}).status_code == 200


def subscribe_and_change(ps: PubSub, topic: str, change, count: int) -> tuple[list[dict], dict]:
    stream = ps.subscribe(topic, 10, "EARLIEST")
    change()
    events = ps.events(stream, count)
    schema = json.loads(ps.schema(events[0].event.schema_id))
    return records_of(ps, events), schema


def test_update_bitmaps_name_the_changed_and_nulled_fields(ps):
    reply = ps.sf.post(f"{V}/sobjects/Contact", json={"FirstName": "Ada", "LastName": "Lovelace",
                                                     "Phone": "123", "MailingCity": "London"})
    contact_id = reply.json()["id"]

    def change() -> None:
        update = {"FirstName": "Augusta", "Email": "ada@example.com", "Phone": None, "MailingCity": None}
        assert ps.sf.patch(f"{V}/sobjects/Contact/{contact_id}", json=update).status_code == 204

    (created, updated), schema = subscribe_and_change(ps, "/data/ContactChangeEvent", change, 2)
    header = updated["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE" and header["recordIds"] == [contact_id]
    assert header["entityName"] == "Contact" and header["commitNumber"] > created["ChangeEventHeader"]["commitNumber"]
    assert all(re.fullmatch(r"([0-9]+-)?0x([0-9A-F]{2})+", entry) for entry in header["changedFields"])
    assert decode_bitmap(header["changedFields"], schema) == {
        "Name.FirstName", "Email", "Phone", "MailingAddress.City", "LastModifiedDate"}
    assert decode_bitmap(header["nulledFields"], schema) == {"Phone", "MailingAddress.City"}
    assert header["diffFields"] == []
    assert updated["Name"]["FirstName"] == "Augusta" and updated["Name"]["LastName"] is None  # only what changed
    assert updated["Email"] == "ada@example.com" and updated["Phone"] is None
    assert updated["Title"] is None
    assert created["ChangeEventHeader"]["changedFields"] == []  # a create lists no changed fields
    assert created["Name"] == {"Salutation": None, "FirstName": "Ada", "LastName": "Lovelace"}
    assert created["MailingAddress"]["City"] == "London"


def test_bitmaps_match_what_cometd_lists_by_name(ps):
    from test_streaming import Bayeux

    ps.sf.admin("POST", "streaming/config", {"connect_timeout": 1})
    bayeux = Bayeux(ps.sf, ps.token).start("/data/ContactChangeEvent")
    contact_id = ps.sf.post(f"{V}/sobjects/Contact", json={"LastName": "Hopper"}).json()["id"]

    def change() -> None:
        assert ps.sf.patch(f"{V}/sobjects/Contact/{contact_id}", json={"Title": "Rear Admiral", "Department": "Navy"}
                           ).status_code == 204

    (_, updated), schema = subscribe_and_change(ps, "/data/ContactChangeEvent", change, 2)
    messages = bayeux.events()
    cometd_fields = set(messages[-1]["data"]["payload"]["ChangeEventHeader"]["changedFields"])
    assert decode_bitmap(updated["ChangeEventHeader"]["changedFields"], schema) == cometd_fields == {
        "Title", "Department", "LastModifiedDate"}


def test_custom_object_values_in_their_avro_types(ps):
    def change() -> None:
        reply = ps.sf.post(f"{V}/sobjects/Invoice__c", json={"Name": "INV-1", "Amount__c": 12.5, "Due__c": "2026-01-31"})
        assert reply.status_code == 201, reply.text

    (created,), schema = subscribe_and_change(ps, "/data/Invoice__ChangeEvent", change, 1)
    assert schema["name"] == "Invoice__ChangeEvent"
    assert created["Amount__c"] == 12.5
    assert created["Due__c"] == (dt.date(2026, 1, 31) - dt.date(1970, 1, 1)).days  # dates: days since the epoch
    assert isinstance(created["CreatedDate"], int) and created["CreatedDate"] > 1_600_000_000_000  # epoch ms
    assert created["ChangeEventHeader"]["changeType"] == "CREATE"


def test_delete_and_the_multi_entity_topic(ps):
    contact_id = ps.sf.post(f"{V}/sobjects/Contact", json={"LastName": "Gone"}).json()["id"]

    def change() -> None:
        assert ps.sf.delete(f"{V}/sobjects/Contact/{contact_id}").status_code == 204
        ps.sf.post(f"{V}/sobjects/Invoice__c", json={"Name": "INV-2"})

    records, _ = subscribe_and_change(ps, "/data/ChangeEvents", change, 3)
    assert [(r["ChangeEventHeader"]["entityName"], r["ChangeEventHeader"]["changeType"]) for r in records] == [
        ("Contact", "CREATE"), ("Contact", "DELETE"), ("Invoice__c", "CREATE")]
    assert records[1]["Name"] is None and records[1]["ChangeEventHeader"]["recordIds"] == [contact_id]


def test_only_compound_parts_still_lead_with_a_top_level_bitmap(ps):
    contact_id = ps.sf.post(f"{V}/sobjects/Contact", json={"LastName": "Curie", "MailingCity": "Paris"}).json()["id"]

    def change() -> None:
        assert ps.sf.patch(f"{V}/sobjects/Contact/{contact_id}", json={"MailingCity": None}).status_code == 204

    (_, updated), schema = subscribe_and_change(ps, "/data/ContactChangeEvent", change, 2)
    nulled = updated["ChangeEventHeader"]["nulledFields"]
    position = [f["name"] for f in schema["fields"]].index("MailingAddress")
    assert nulled == ["0x00", f"{position}-0x02"]  # City is the second field of Address
    assert decode_bitmap(nulled, schema) == {"MailingAddress.City"}
