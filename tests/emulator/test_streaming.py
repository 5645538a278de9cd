"""The emulator's Streaming API: Bayeux shapes over raw JSON, and a real aiocometd session."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from typing import Any

import pytest
import requests
from sf_emulator_client import V, EmulatorClient

from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

API = "62.0"
ACCOUNT_TOPIC = "SELECT Id, Name, Industry FROM Account WHERE Industry = 'Energy'"
SCHEMA = {
    "objects": {
        "Order_Shipped__e": {"fields": {"OrderNumber__c": {"type": "text", "length": 20}}},
        "Invoice__c": {"fields": {"Amount__c": {"type": "currency"}}},
    }
}


@pytest.fixture(scope="module")
def _server(tmp_path_factory) -> EmulatorServer:
    schema = tmp_path_factory.mktemp("streaming-schema") / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    server = EmulatorServer(cert_dir=tmp_path_factory.mktemp("streaming-certs"), schema_files=[schema]).start()
    yield server
    server.stop()


@pytest.fixture
def sf(_server) -> EmulatorClient:
    _server.reset()
    client = EmulatorClient(_server)
    assert client.admin("POST", "streaming/config", {"connect_timeout": 1}).status_code == 200
    return client


class Bayeux:
    """Raw Bayeux messages over ``requests``, to check exact shapes."""

    def __init__(self, sf: EmulatorClient, token: str | None = None) -> None:
        self.sf = sf
        self.token = token or sf.token()
        self.client_id: str | None = None
        self._id = 0

    def send(self, *messages: dict[str, Any], path: str = f"/cometd/{API}") -> requests.Response:
        return requests.post(self.sf.url + path, json=list(messages), verify=self.sf.verify, timeout=10,
                             headers={"Authorization": f"Bearer {self.token}"})

    def message(self, channel: str, **fields: Any) -> dict[str, Any]:
        self._id += 1
        body = {"channel": channel, "id": str(self._id), **fields}
        if self.client_id and channel != "/meta/handshake":
            body["clientId"] = self.client_id
        return body

    def one(self, channel: str, **fields: Any) -> dict[str, Any]:
        reply = self.send(self.message(channel, **fields))
        assert reply.status_code == 200, reply.text
        [answer] = reply.json()
        return answer

    def handshake(self) -> dict[str, Any]:
        answer = self.one("/meta/handshake", version="1.0", supportedConnectionTypes=["long-polling"],
                          ext={"replay": True})
        self.client_id = answer.get("clientId")
        return answer

    def subscribe(self, channel: str, replay_id: int | None = None) -> dict[str, Any]:
        ext = {} if replay_id is None else {"ext": {"replay": {channel: replay_id}}}
        return self.one("/meta/subscribe", subscription=channel, **ext)

    def connect(self) -> list[dict[str, Any]]:
        reply = self.send(self.message("/meta/connect", connectionType="long-polling"))
        assert reply.status_code == 200, reply.text
        return reply.json()

    def events(self) -> list[dict[str, Any]]:
        """Connect once and return the event messages (the connect reply is last)."""
        messages = self.connect()
        assert messages[-1]["channel"] == "/meta/connect" and messages[-1]["successful"], messages
        return messages[:-1]

    def start(self, *channels: str, replay_id: int | None = None) -> Bayeux:
        assert self.handshake()["successful"]
        for channel in channels:
            assert self.subscribe(channel, replay_id)["successful"]
        self.first = self.events()  # the first connect answers at once, with any replayed events
        return self


def create_topic(sf: EmulatorClient, name: str = "EnergyAccounts", query: str = ACCOUNT_TOPIC, **fields: Any) -> str:
    body = {"Name": name, "Query": query, "ApiVersion": float(API), **fields}
    reply = sf.post(f"{V}/sobjects/PushTopic", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def create(sf: EmulatorClient, sobject: str, **values: Any) -> str:
    reply = sf.post(f"{V}/sobjects/{sobject}", json=values)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def select_cdc(sf: EmulatorClient, *entities: str) -> None:
    """Select entities for Change Data Capture (none are selected after a reset, as in a new org)."""
    reply = sf.admin("POST", "streaming/config", {"cdc_entities": list(entities)})
    assert reply.status_code == 200, reply.text


# -- protocol shapes -----------------------------------------------------------------------------


def test_handshake_subscribe_connect_shapes(sf):
    create_topic(sf)
    bayeux = Bayeux(sf)
    hs = bayeux.handshake()
    assert hs["successful"] and hs["channel"] == "/meta/handshake" and hs["id"] == "1"
    assert len(hs["clientId"]) >= 20 and hs["version"] == "1.0"
    assert hs["supportedConnectionTypes"] == ["long-polling"]
    assert hs["ext"]["replay"] is True
    sub = bayeux.subscribe("/topic/EnergyAccounts", -1)
    assert sub == {"channel": "/meta/subscribe", "id": "2", "clientId": hs["clientId"],
                   "subscription": "/topic/EnergyAccounts", "successful": True}
    first = bayeux.connect()
    assert first == [{"channel": "/meta/connect", "id": "3", "clientId": hs["clientId"], "successful": True,
                      "advice": {"reconnect": "retry", "interval": 0, "timeout": 1000}}]
    started = time.monotonic()
    assert bayeux.events() == []  # held for the connect timeout, then answered empty
    assert 0.8 < time.monotonic() - started < 3
    unsub = bayeux.one("/meta/unsubscribe", subscription="/topic/EnergyAccounts")
    assert unsub["successful"] and unsub["subscription"] == "/topic/EnergyAccounts"
    bye = bayeux.one("/meta/disconnect")
    assert bye["successful"] and bye["advice"] == {"reconnect": "none"}
    again = bayeux.one("/meta/connect", connectionType="long-polling")
    assert again["error"] == "403::Unknown client" and again["advice"]["reconnect"] == "handshake"


def test_connect_answers_early_when_an_event_arrives(sf):
    create_topic(sf)
    bayeux = Bayeux(sf).start("/topic/EnergyAccounts")
    sf.admin("POST", "streaming/config", {"connect_timeout": 5})
    timer = threading.Timer(0.3, lambda: create(sf, "Account", Name="Early", Industry="Energy"))
    timer.start()
    started = time.monotonic()
    [event] = bayeux.events()
    timer.join()
    assert time.monotonic() - started < 2.5
    assert event["data"]["sobject"]["Name"] == "Early"


def test_handshake_errors(sf):
    bayeux = Bayeux(sf, token="00D000000000001!AQbogus")
    denied = bayeux.send(bayeux.message("/meta/handshake", version="1.0", supportedConnectionTypes=["long-polling"]))
    assert denied.status_code == 401
    [answer] = denied.json()
    assert answer["error"] == "403::Handshake denied" and answer["successful"] is False
    assert answer["ext"] == {"sfdc": {"failureReason": "401::Authentication invalid"}}
    assert answer["advice"] == {"reconnect": "none"}
    websocket = Bayeux(sf).one("/meta/handshake", version="1.0", supportedConnectionTypes=["websocket"])
    assert websocket["successful"] is False and websocket["error"] == "400::Invalid connection type websocket"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/cometd", "400::API version in the URI is mandatory. URI format: '/cometd/66.0'"),
        ("/cometd/20.0", "400::Unsupported API version. Only API versions '31.0' and above are supported. "
                         "URI format: '/cometd/66.0'"),
    ],
)
def test_bad_endpoint_uri(sf, path, error):
    reply = Bayeux(sf).send({"channel": "/meta/handshake"}, path=path)
    assert reply.status_code == 400
    assert reply.json() == [{"successful": False, "error": error}]


def test_malformed_json_body(sf):
    reply = requests.post(sf.url + f"/cometd/{API}", data="[{", verify=sf.verify, timeout=10,
                          headers={"Authorization": f"Bearer {sf.token()}"})
    assert reply.status_code == 400 and reply.json()[0]["error"].startswith("400::Unexpected character")


def test_subscribe_errors(sf):
    create_topic(sf)
    bayeux = Bayeux(sf)
    bayeux.handshake()
    assert bayeux.subscribe("/topic/Nope")["error"] == (
        "400::The channel you requested to subscribe to does not exist {/topic/Nope}")
    assert bayeux.subscribe("/data/UserChangeEvent")["error"].startswith("400::The channel you requested")
    assert bayeux.subscribe("/event/Nope__e")["error"].startswith("400::The channel you requested")
    assert bayeux.subscribe("/u/Nope")["error"].startswith("400::The channel you requested")
    assert bayeux.subscribe("/foo/bar")["error"].startswith("400::The channel you requested")
    assert bayeux.subscribe("topic/EnergyAccounts")["error"] == (
        "400::Channel subscriptions must start with a leading '/'")
    assert bayeux.one("/meta/subscribe")["error"] == "400::Channel name not specified"
    bad_replay = bayeux.subscribe("/topic/EnergyAccounts", "soon")  # type: ignore[arg-type]
    assert bad_replay["successful"] is False and "replayId" in bad_replay["error"]
    assert bayeux.one("/topic/EnergyAccounts", data={})["error"] == "403::Publish denied"
    unknown = Bayeux(sf)
    unknown.client_id = "nosuchclient"
    reply = unknown.subscribe("/topic/EnergyAccounts")
    assert reply["error"] == "403::Unknown client" and reply["advice"] == {"reconnect": "handshake", "interval": 0}


# -- PushTopic events --------------------------------------------------------------------------


def test_pushtopic_create_update_delete_undelete(sf):
    create_topic(sf)
    bayeux = Bayeux(sf).start("/topic/EnergyAccounts")
    record_id = create(sf, "Account", Name="Acme", Industry="Energy")
    create(sf, "Account", Name="Not energy", Industry="Banking")  # fails the WHERE clause
    assert sf.patch(f"{V}/sobjects/Account/{record_id}", json={"Name": "Acme 2"}).status_code == 204
    assert sf.delete(f"{V}/sobjects/Account/{record_id}").status_code == 204
    events = bayeux.events()
    assert [e["data"]["event"]["type"] for e in events] == ["created", "updated", "deleted"]
    assert [e["data"]["event"]["replayId"] for e in events] == [1, 2, 3]
    assert all(e["channel"] == "/topic/EnergyAccounts" for e in events)
    assert events[0]["data"]["sobject"] == {"Id": record_id, "Name": "Acme", "Industry": "Energy"}
    assert events[1]["data"]["sobject"]["Name"] == "Acme 2"
    assert events[2]["data"]["sobject"]["Name"] == "Acme 2"  # judged as it was before the delete
    created = events[0]["data"]["event"]["createdDate"]
    assert len(created) == 24 and created.endswith("Z") and created[10] == "T"


def test_pushtopic_operations_and_inactive_topics(sf):
    create_topic(sf, "CreatesOnly", NotifyForOperationUpdate=False, NotifyForOperationDelete=False)
    create_topic(sf, "Off", IsActive=False)
    bayeux = Bayeux(sf).start("/topic/CreatesOnly", "/topic/Off")
    record_id = create(sf, "Account", Name="A", Industry="Energy")
    sf.patch(f"{V}/sobjects/Account/{record_id}", json={"Name": "B"})
    sf.delete(f"{V}/sobjects/Account/{record_id}")
    events = bayeux.events()
    assert [(e["channel"], e["data"]["event"]["type"]) for e in events] == [("/topic/CreatesOnly", "created")]


def test_pushtopic_entering_the_where_clause_counts_as_update(sf):
    create_topic(sf)
    bayeux = Bayeux(sf).start("/topic/EnergyAccounts")
    record_id = create(sf, "Account", Name="Later", Industry="Banking")
    sf.patch(f"{V}/sobjects/Account/{record_id}", json={"Industry": "Energy"})
    [event] = bayeux.events()
    assert event["data"]["event"]["type"] == "updated" and event["data"]["sobject"]["Industry"] == "Energy"


@pytest.mark.parametrize(
    ("notify_for_fields", "expected"),
    [
        # updates: Phone (not referenced), Name (selected), AnnualRevenue (in WHERE only)
        ("All", ["Phone", "Name", "AnnualRevenue"]),
        ("Referenced", ["Name", "AnnualRevenue"]),
        ("Select", ["Name"]),
        ("Where", ["AnnualRevenue"]),
    ],
)
def test_notify_for_fields(sf, notify_for_fields, expected):
    create_topic(sf, "Big", "SELECT Id, Name FROM Account WHERE AnnualRevenue > 1000",
                 NotifyForFields=notify_for_fields)
    record_id = create(sf, "Account", Name="Big", AnnualRevenue=5000)
    bayeux = Bayeux(sf).start("/topic/Big")
    notified = []
    for field, value in (("Phone", "555"), ("Name", "Bigger"), ("AnnualRevenue", 6000)):
        sf.patch(f"{V}/sobjects/Account/{record_id}", json={field: value})
        if bayeux.events():
            notified.append(field)
    assert notified == expected


# -- replay ------------------------------------------------------------------------------------


def test_replay_minus_one_minus_two_and_n(sf):
    create_topic(sf)
    for n in range(3):
        create(sf, "Account", Name=f"R{n}", Industry="Energy")
    new_only = Bayeux(sf).start("/topic/EnergyAccounts", replay_id=-1)
    everything = Bayeux(sf).start("/topic/EnergyAccounts", replay_id=-2)
    after_one = Bayeux(sf).start("/topic/EnergyAccounts", replay_id=1)
    assert new_only.first == []
    assert [e["data"]["event"]["replayId"] for e in everything.first] == [1, 2, 3]
    assert [e["data"]["sobject"]["Name"] for e in after_one.first] == ["R1", "R2"]
    create(sf, "Account", Name="R3", Industry="Energy")
    assert [e["data"]["event"]["replayId"] for e in new_only.events()] == [4]
    up_to_date = Bayeux(sf).start("/topic/EnergyAccounts", replay_id=4)
    assert up_to_date.first == []


def test_invalid_replay_id_and_retention(sf):
    create_topic(sf)
    select_cdc(sf, "Account")
    for n in range(4):
        create(sf, "Account", Name=f"R{n}", Industry="Energy")
    bayeux = Bayeux(sf)
    bayeux.handshake()
    message = ("400::The replayId {99} you provided was invalid.  Please provide a valid ID, -2 to replay all "
               "events, or -1 to replay only new events.")
    assert bayeux.subscribe("/topic/EnergyAccounts", 99)["error"] == message
    assert bayeux.subscribe("/topic/EnergyAccounts", -3)["successful"] is False
    aged = sf.admin("POST", "streaming/age-out", {"channel": "/topic/EnergyAccounts", "count": 2}).json()
    assert aged == {"aged_out": 2}
    assert bayeux.subscribe("/topic/EnergyAccounts", 1)["error"].startswith("400::The replayId {1} ")
    assert bayeux.subscribe("/topic/EnergyAccounts", 2)["successful"]  # the event right before the window
    # shifting time past the 24 h PushTopic window empties the log; CDC (72 h) keeps its events
    sf.admin("POST", "streaming/age-out", {"seconds": 25 * 3600})
    channels = sf.admin("GET", "streaming/channels").json()
    assert channels["/topic/EnergyAccounts"]["retained"] == 0
    assert channels["/data/AccountChangeEvent"]["retained"] == 4
    assert sf.admin("POST", "streaming/age-out", {}).status_code == 400


# -- connection faults, unknown clients, sessions ----------------------------------------------


def test_forgotten_client_gets_unknown_client_and_rehandshakes(sf):
    create_topic(sf)
    bayeux = Bayeux(sf).start("/topic/EnergyAccounts")
    assert sf.admin("POST", "streaming/forget-clients").json() == {"forgotten": 1}
    [reply] = bayeux.connect()
    assert reply["error"] == "403::Unknown client" and reply["successful"] is False
    assert reply["advice"] == {"reconnect": "handshake", "interval": 0}
    bayeux.start("/topic/EnergyAccounts")
    create(sf, "Account", Name="After", Industry="Energy")
    assert len(bayeux.events()) == 1


def test_session_expiry_answers_401_authentication_invalid(sf):
    create_topic(sf)
    bayeux = Bayeux(sf).start("/topic/EnergyAccounts")
    sf.admin("POST", "streaming/config", {"connect_timeout": 10})
    timer = threading.Timer(0.3, lambda: sf.admin("POST", "sessions/expire"))
    timer.start()
    started = time.monotonic()
    [reply] = bayeux.connect()  # held, then woken by the expiry
    timer.join()
    assert time.monotonic() - started < 5
    assert reply["error"] == "401::Authentication invalid"
    assert reply["advice"] == {"reconnect": "none", "interval": 0} and reply["successful"] is False
    sf._token = None
    assert Bayeux(sf).start("/topic/EnergyAccounts")  # a new token handshakes again
    assert sf.admin("GET", "stats").json()["streaming"]["authentication_errors"] == 1


def test_dropped_long_poll_keeps_events_for_the_next_connect(sf):
    create_topic(sf)
    bayeux = Bayeux(sf).start("/topic/EnergyAccounts")
    sf.admin("POST", "faults", {"drop_connection": True, "path_prefix": "/cometd", "count": 1})
    with pytest.raises(requests.ConnectionError):
        bayeux.connect()
    create(sf, "Account", Name="Kept", Industry="Energy")
    [event] = bayeux.events()
    assert event["data"]["sobject"]["Name"] == "Kept"


def test_admin_drop_of_held_connects(sf):
    create_topic(sf)
    bayeux = Bayeux(sf).start("/topic/EnergyAccounts")
    sf.admin("POST", "streaming/config", {"connect_timeout": 10})
    outcome: list[Any] = []

    def poll() -> None:
        try:
            outcome.append(bayeux.connect())
        except requests.ConnectionError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=poll)
    thread.start()
    deadline = time.monotonic() + 5
    while sf.admin("GET", "stats").json()["streaming"]["held_connects"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sf.admin("POST", "streaming/drop-connects").json() == {"dropped": 1}
    thread.join(5)
    assert isinstance(outcome[0], requests.ConnectionError)
    create(sf, "Account", Name="After drop", Industry="Energy")
    sf.admin("POST", "streaming/config", {"connect_timeout": 1})
    assert [e["data"]["sobject"]["Name"] for e in bayeux.events()] == ["After drop"]


def test_a_held_connect_does_not_delay_stopping_the_server(tmp_path):
    # A client whose process died leaves its connect held (Salesforce holds it up to 110 s); stopping
    # the emulator answers it instead of waiting for it.
    server = EmulatorServer(cert_dir=tmp_path).start()
    sf = EmulatorClient(server)
    create_topic(sf)
    bayeux = Bayeux(sf).start("/topic/EnergyAccounts")  # connect_timeout: 110 s, as Salesforce's
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(bayeux.connect()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while sf.admin("GET", "stats").json()["streaming"]["held_connects"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sf.admin("GET", "stats").json()["streaming"]["held_connects"] == 1
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    thread.join(5)
    assert answers and answers[0][-1]["channel"] == "/meta/connect"  # answered, not cut


# -- CDC, platform events, generic streaming ------------------------------------------------------


def test_change_data_capture_events(sf):
    select_cdc(sf, "Contact", "Invoice__c")
    bayeux = Bayeux(sf).start("/data/ChangeEvents", "/data/ContactChangeEvent", "/data/Invoice__ChangeEvent")
    contact_id = create(sf, "Contact", LastName="Lovelace", Email="ada@example.com")
    sf.patch(f"{V}/sobjects/Contact/{contact_id}", json={"Email": None, "Title": "Countess"})
    sf.delete(f"{V}/sobjects/Contact/{contact_id}")
    invoice_id = create(sf, "Invoice__c", Name="INV-1", Amount__c=12.5)
    events = bayeux.events()
    by_channel: dict[str, list] = {}
    for event in events:
        by_channel.setdefault(event["channel"], []).append(event["data"])
    assert [d["event"]["replayId"] for d in by_channel["/data/ChangeEvents"]] == [1, 2, 3, 4]
    assert [d["event"]["replayId"] for d in by_channel["/data/ContactChangeEvent"]] == [1, 2, 3]
    create_event, update_event, delete_event = by_channel["/data/ContactChangeEvent"]
    header = create_event["payload"]["ChangeEventHeader"]
    assert header["entityName"] == "Contact" and header["recordIds"] == [contact_id]
    assert header["changeType"] == "CREATE" and header["changedFields"] == []
    assert header["commitUser"].startswith("005") and isinstance(header["commitTimestamp"], int)
    assert {"transactionKey", "sequenceNumber", "commitNumber", "changeOrigin"} <= set(header)
    assert create_event["payload"]["LastName"] == "Lovelace" and "Id" not in create_event["payload"]
    assert len(create_event["schema"]) == 22
    update_header = update_event["payload"]["ChangeEventHeader"]
    assert update_header["changeType"] == "UPDATE"
    assert set(update_header["changedFields"]) == {"Email", "Title", "LastModifiedDate"}
    assert update_header["nulledFields"] == ["Email"]
    assert update_event["payload"]["Title"] == "Countess" and "LastName" not in update_event["payload"]
    assert delete_event["payload"] == {"ChangeEventHeader": delete_event["payload"]["ChangeEventHeader"]}
    assert delete_event["payload"]["ChangeEventHeader"]["changeType"] == "DELETE"
    [invoice] = by_channel["/data/Invoice__ChangeEvent"]
    assert invoice["payload"]["ChangeEventHeader"]["recordIds"] == [invoice_id]
    assert invoice["payload"]["Amount__c"] == 12.5


def test_change_events_only_for_selected_entities(sf):
    assert sf.admin("GET", "streaming/config").json()["cdc_entities"] == []  # none selected, as in a new org
    # an unselected entity's channel still exists: the subscription succeeds, no event ever comes
    bayeux = Bayeux(sf).start("/data/ChangeEvents", "/data/AccountChangeEvent", "/data/ContactChangeEvent")
    create(sf, "Account", Name="Unselected")
    assert bayeux.events() == []
    logs = sf.admin("GET", "streaming/channels").json()
    assert {c: log["last_replay_id"] for c, log in logs.items()} == dict.fromkeys(
        ["/data/AccountChangeEvent", "/data/ChangeEvents", "/data/ContactChangeEvent"], 0)
    select_cdc(sf, "ContactChangeEvent")  # PlatformEventChannelMember's event-name form works too
    assert sf.admin("GET", "streaming/config").json()["cdc_entities"] == ["Contact"]
    create(sf, "Account", Name="Still unselected")
    contact_id = create(sf, "Contact", LastName="Selected")
    events = bayeux.events()
    assert [e["channel"] for e in events] == ["/data/ChangeEvents", "/data/ContactChangeEvent"]
    assert {e["data"]["payload"]["ChangeEventHeader"]["recordIds"][0] for e in events} == {contact_id}
    select_cdc(sf)  # deselect everything
    create(sf, "Contact", LastName="Deselected")
    assert bayeux.events() == []


@pytest.mark.parametrize(("selection", "message"), [
    ("Account", "must be a list"),
    ([1], "must be a list"),
    (["User"], "'User' is not an entity that supports Change Data Capture"),
    (["Account", "Nope__c"], "'Nope__c' is not"),
    (["Order_Shipped__e"], "is not"),  # platform events have no change events
])
def test_cdc_selection_bad_input_changes_nothing(sf, selection, message):
    select_cdc(sf, "Account")
    reply = sf.admin("POST", "streaming/config", {"cdc_entities": selection})
    assert reply.status_code == 400 and message in reply.text
    assert sf.admin("GET", "streaming/config").json()["cdc_entities"] == ["Account"]


def test_cdc_selection_is_canonical_and_a_reset_restores_the_configured_one(sf):
    reply = sf.admin("POST", "streaming/config", {"cdc_entities": ["invoice__ChangeEvent", "account", "Account"]})
    assert reply.status_code == 200 and reply.json()["cdc_entities"] == ["Account", "Invoice__c"]
    both = sf.admin("POST", "streaming/config", {"cdc_entities": ["Contact"], "connect_timeout": -1})
    assert both.status_code == 400  # the other key's error leaves the selection alone
    assert sf.admin("GET", "streaming/config").json()["cdc_entities"] == ["Account", "Invoice__c"]
    sf.server.reset()
    assert sf.admin("GET", "streaming/config").json()["cdc_entities"] == []


def test_cdc_entities_from_the_emulator_config(tmp_path):
    from airflow_provider_salesforce_suite.emulator.config import EmulatorConfig

    path = tmp_path / "emulator.json"
    path.write_text(json.dumps({"cdc_entities": ["AccountChangeEvent"]}))
    assert EmulatorConfig.from_file(path).cdc_entities == ["AccountChangeEvent"]
    assert EmulatorConfig().cdc_entities == []
    with EmulatorServer(tls=False, config=path) as server:
        config_url = f"{server.url}/__emulator__/streaming/config"
        assert requests.get(config_url, timeout=10).json()["cdc_entities"] == ["Account"]
        requests.post(config_url, json={"cdc_entities": ["Contact"]}, timeout=10).raise_for_status()
        server.reset()
        assert requests.get(config_url, timeout=10).json()["cdc_entities"] == ["Account"]
    with pytest.raises(ValueError, match="'User' is not an entity"):
        EmulatorServer(tls=False, config=EmulatorConfig(cdc_entities=["User"])).start()


def test_push_topics_created_or_deactivated_between_writes_are_honoured(sf):
    bayeux = Bayeux(sf).start("/data/ChangeEvents")
    create(sf, "Account", Name="Before any topic", Industry="Energy")  # nothing wants Account yet
    topic_id = create_topic(sf)
    topic = Bayeux(sf).start("/topic/EnergyAccounts")
    create(sf, "Account", Name="With topic", Industry="Energy")
    assert [e["data"]["sobject"]["Name"] for e in topic.events()] == ["With topic"]
    assert sf.patch(f"{V}/sobjects/PushTopic/{topic_id}", json={"IsActive": False}).status_code == 204
    create(sf, "Account", Name="Topic inactive", Industry="Energy")
    assert topic.events() == [] and bayeux.events() == []
    logs = sf.admin("GET", "streaming/channels").json()
    assert {c: log["last_replay_id"] for c, log in logs.items()} == {"/data/ChangeEvents": 0,
                                                                     "/topic/EnergyAccounts": 1}


def test_platform_event_published_through_rest(sf):
    bayeux = Bayeux(sf).start("/event/Order_Shipped__e")
    reply = sf.post(f"{V}/sobjects/Order_Shipped__e", json={"OrderNumber__c": "ON-1"})
    assert reply.status_code == 201 and reply.json()["success"] is True
    assert len(reply.json()["id"]) == 18
    [event] = bayeux.events()
    assert event["channel"] == "/event/Order_Shipped__e"
    data = event["data"]
    assert data["payload"]["OrderNumber__c"] == "ON-1"
    assert data["payload"]["CreatedById"].startswith("005") and data["payload"]["CreatedDate"]
    assert data["event"]["replayId"] == 1 and len(data["event"]["EventUuid"]) == 36
    assert len(data["schema"]) == 22
    query = sf.get(f"{V}/query", params={"q": "SELECT Id FROM Order_Shipped__e"})
    assert query.status_code == 400  # events are not queryable records


def test_generic_streaming_push(sf):
    channel_id = create(sf, "StreamingChannel", Name="/u/Notifications")
    bayeux = Bayeux(sf).start("/u/Notifications")
    push = sf.post(f"{V}/sobjects/StreamingChannel/{channel_id}/push",
                   json={"pushEvents": [{"payload": "hello", "userIds": []}]})
    assert push.status_code == 200 and push.json() == [{"fanoutCount": 1, "userOnlineStatus": {}}]
    other_user = "005000000000099AAA"
    targeted = sf.post(f"{V}/sobjects/StreamingChannel/{channel_id}/push",
                       json={"pushEvents": [{"payload": "not for you", "userIds": [other_user]}]})
    assert targeted.json() == [{"fanoutCount": 0, "userOnlineStatus": {other_user: False}}]
    [event] = bayeux.events()
    assert event["channel"] == "/u/Notifications"
    assert event["data"]["payload"] == "hello" and event["data"]["event"]["replayId"] == 1
    assert sf.post(f"{V}/sobjects/StreamingChannel/{channel_id}/push", json={}).status_code == 400
    missing = sf.post(f"{V}/sobjects/StreamingChannel/0M6000000000099AAA/push",
                      json={"pushEvents": [{"payload": "x"}]})
    assert missing.status_code == 404


def test_bulk_writes_from_worker_threads_reach_subscribers(sf):
    select_cdc(sf, "Account")
    bayeux = Bayeux(sf).start("/data/AccountChangeEvent")
    server = sf.server
    server.call(lambda: None)  # the server thread is up
    done = threading.Event()

    def write_from_another_thread() -> None:
        server.state.store.create_many("Account", [{"Name": f"T{n}"} for n in range(5)])
        done.set()

    threading.Thread(target=write_from_another_thread).start()
    assert done.wait(5)
    events = bayeux.events()
    assert [e["data"]["event"]["replayId"] for e in events] == [1, 2, 3, 4, 5]


def test_streaming_config_knob_validation(sf):
    assert sf.admin("POST", "streaming/config", {"nope": 1}).status_code == 400
    assert sf.admin("POST", "streaming/config", {"connect_timeout": -1}).status_code == 400
    assert sf.admin("GET", "streaming/config").json()["connect_timeout"] == 1.0


# -- a real CometD client ----------------------------------------------------------------------


class _BearerAuth:
    """An aiocometd auth extension adding the bearer token (what the streaming hook does too)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def outgoing(self, payload, headers) -> None:
        headers["Authorization"] = f"Bearer {self.token}"

    async def incoming(self, payload, headers=None) -> None:
        return None

    async def authenticate(self) -> None:
        return None


async def test_real_aiocometd_session_many_subscribers_share_one_client(sf):
    from aiocometd_noloop import Client, ConnectionType

    create_topic(sf)
    select_cdc(sf, "Account")
    context = ssl.create_default_context(cafile=sf.verify)
    url = f"{sf.url}/cometd/{API}"
    async with Client(url, ConnectionType.LONG_POLLING, auth=_BearerAuth(sf.token()), ssl=context) as client:
        await client.subscribe("/topic/EnergyAccounts")
        await client.subscribe("/data/AccountChangeEvent")
        await asyncio.to_thread(create, sf, "Account", Name="Via aiocometd", Industry="Energy")
        received = {}
        while len(received) < 2:
            message = await asyncio.wait_for(client.receive(), 10)
            received[message["channel"]] = message["data"]
    assert received["/topic/EnergyAccounts"]["sobject"]["Name"] == "Via aiocometd"
    assert received["/data/AccountChangeEvent"]["payload"]["ChangeEventHeader"]["changeType"] == "CREATE"
    stats = sf.admin("GET", "stats").json()["streaming"]
    assert stats["handshakes"] == 1 and stats["subscribes"] == 2 and stats["events_delivered"] >= 2
    assert stats["clients"] == 0  # the client disconnected on exit


def test_push_topic_names_are_unique_as_on_salesforce(salesforce_emulator_reset) -> None:
    """A second PushTopic with a taken Name is refused with DUPLICATE_VALUE (Name is unique)."""
    import pytest

    from airflow_provider_salesforce_suite.emulator.errors import SalesforceApiError

    store = salesforce_emulator_reset.state.store
    topic = {"Name": "UniqueTopic", "Query": "SELECT Id FROM Account", "ApiVersion": 64.0}
    salesforce_emulator_reset.call(lambda: store.create("PushTopic", dict(topic)))
    with pytest.raises(SalesforceApiError) as refused:
        salesforce_emulator_reset.call(lambda: store.create("PushTopic", dict(topic)))
    assert refused.value.error_code == "DUPLICATE_VALUE"
