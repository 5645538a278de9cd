"""Independent Salesforce clients work against the emulator unchanged: simple-salesforce over
TLS with the emulator's CA bundle, and plain requests doing the username-password flow."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound
from sf_emulator_client import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME


def _login(server) -> dict:
    reply = requests.post(
        f"{server.url}/services/oauth2/token",
        data={"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "username": USERNAME, "password": PASSWORD},
        verify=server.ca_bundle, timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.fixture
def sf(salesforce_emulator_reset, monkeypatch) -> Salesforce:
    # requests lets these variables override Session.verify; simple-salesforce passes no verify
    # per request, so a CI image that sets them would hide the session's CA bundle.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    token = _login(salesforce_emulator_reset)
    session = requests.Session()
    session.verify = salesforce_emulator_reset.ca_bundle
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session,
                      version="62.0")


def test_plain_requests_username_password_flow(salesforce_emulator_reset) -> None:
    token = _login(salesforce_emulator_reset)
    reply = requests.get(f"{token['instance_url']}/services/data/v62.0/sobjects/",
                         headers={"Authorization": f"Bearer {token['access_token']}"},
                         verify=salesforce_emulator_reset.ca_bundle, timeout=10)
    assert reply.status_code == 200
    assert "sobjects" in reply.json()


def test_simple_salesforce_crud(sf: Salesforce) -> None:
    created = sf.Account.create({"Name": "Simple", "Industry": "Energy"})
    assert created["success"] is True
    record = sf.Account.get(created["id"])
    assert record["Name"] == "Simple"
    assert sf.Account.update(created["id"], {"Industry": "Banking"}) == 204
    assert sf.Account.get(created["id"])["Industry"] == "Banking"
    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(created["id"])


def test_simple_salesforce_upsert_by_id(sf: Salesforce) -> None:
    # Standard objects have no external-id fields; upsert on Id updates an existing record.
    record_id = sf.Account.create({"Name": "Before"})["id"]
    assert sf.Account.upsert(f"Id/{record_id}", {"Name": "After"}) == 200
    assert sf.Account.get(record_id)["Name"] == "After"


def test_simple_salesforce_query_query_all_describe_limits(sf: Salesforce, salesforce_emulator_reset) -> None:
    server = salesforce_emulator_reset
    server.call(lambda: server.state.store.create_many("Account", [{"Name": f"Q{i}"} for i in range(250)]))
    gone = sf.Account.create({"Name": "Gone"})["id"]
    sf.Account.delete(gone)
    result = sf.query("SELECT Id, Name FROM Account")
    assert result["totalSize"] == 250 and result["done"] is True
    sf.headers["Sforce-Query-Options"] = "batchSize=200"
    live = sf.query_all("SELECT Id FROM Account")  # simple-salesforce: /query, every page
    assert live["totalSize"] == 250 and len(live["records"]) == 250
    everything = sf.query_all("SELECT Id FROM Account", include_deleted=True)  # /queryAll
    assert everything["totalSize"] == 251 and len(everything["records"]) == 251
    assert sf.Account.describe()["name"] == "Account"
    assert {"Account", "Contact"} <= {s["name"] for s in sf.describe()["sobjects"]}
    assert sf.limits()["DailyApiRequests"]["Max"] == 15000
    assert sf.api_usage  # simple-salesforce parsed our Sforce-Limit-Info header
