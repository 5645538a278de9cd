"""An independent Pub/Sub API client from npm (salesforce-pubsub-api-client, Node.js) works against
the emulator unchanged: it publishes a platform event, subscribes from the earliest event, decodes
change events and their field bitmaps with its own Avro library and bitmap parser, and looks up a
managed subscription over the Tooling API, reads it and commits a replay id.

The package is pinned in tests/emulator/node/package.json and installed with the other Node.js
clients (``node_scripts``, see node_clients.py)."""

from __future__ import annotations

from node_clients import NodeScripts, node_scripts  # noqa: F401  (the fixture)
from pubsub_support import PubSub
from sf_emulator_client import V


def test_node_client_publishes_subscribes_and_decodes_bitmaps(ps: PubSub, node_scripts: NodeScripts) -> None:
    assert ps.sf.admin("POST", "streaming/config", {"cdc_entities": ["Contact"]}).status_code == 200
    assert ps.sf.post(f"{V}/sobjects/Order_Shipped__e", json={"OrderNumber__c": "REST-1"}).status_code == 201
    contact_id = ps.sf.post(f"{V}/sobjects/Contact", json={"FirstName": "Ada", "LastName": "Lovelace"}).json()["id"]
    assert ps.sf.patch(f"{V}/sobjects/Contact/{contact_id}", json={"FirstName": "Augusta", "Phone": "42"}
                       ).status_code == 204
    sub = ps.sf.post(f"{V}/tooling/sobjects/ManagedEventSubscription", json={
        "FullName": "Node_Sub", "Metadata": {"label": "Node", "topicName": "/event/Order_Shipped__e",
                                             "defaultReplay": "EARLIEST", "state": "RUN"}}).json()["id"]
    # the CA bundle covers the client's HTTPS calls (Tooling); its gRPC channel has its own TLS option
    docs = node_scripts.run("pubsub_client.mjs", ps.token, ps.server.url, ps.tenant, ps.server.pubsub_endpoint,
                            "Node_Sub", ca_bundle=ps.server.ca_bundle, timeout=120)
    assert docs["published"]["replayId"] == 2 and docs["published"]["correlationKey"] == "node-key"
    assert not docs["published"].get("error")
    events = docs["events"]
    assert [e["replayId"] for e in events] == [1, 2]
    assert [e["payload"]["OrderNumber__c"] for e in events] == ["REST-1", "NODE-1"]
    assert events[1]["id"] == "node-key" and events[1]["payload"]["Rush__c"] is True
    assert events[1]["payload"]["CreatedById"].startswith("005")
    created, updated = docs["cdc"]
    assert [created["replayId"], updated["replayId"]] == [1, 2]
    header = updated["payload"]["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE" and header["recordIds"] == [contact_id]
    assert set(header["changedFields"]) == {"Name.FirstName", "Phone", "LastModifiedDate"}
    assert updated["payload"]["Name"]["FirstName"] == "Augusta" and updated["payload"]["Phone"] == "42"
    assert docs["managed"]["replayIds"] == [1, 2]
    stored = ps.sf.admin("GET", f"pubsub/managed-subscriptions/{sub}").json()
    assert stored["committed_replay_id"] == 2
    assert stored["commits"][-1]["commit_request_id"] == docs["managed"]["commitRequestId"]
