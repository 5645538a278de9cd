"""An independent Pub/Sub API client from npm (salesforce-pubsub-api-client, Node.js) works against
the emulator unchanged: it publishes a platform event, subscribes from the earliest event, decodes
change events and their field bitmaps with its own Avro library and bitmap parser, and looks up a
managed subscription over the Tooling API, reads it and commits a replay id.

The package is installed once into a cache directory (``SF_SUITE_NPM_CACHE``, default
``~/.cache/salesforce-suite-tests/npm``); the test is skipped where Node.js or npm is missing or the
registry cannot be reached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pubsub_support import PubSub
from sf_emulator_client import V

PACKAGE, VERSION = "salesforce-pubsub-api-client", "5.5.2"
SCRIPT = Path(__file__).parent / "node" / "pubsub_client.mjs"


@pytest.fixture(scope="module")
def node_client_dir() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("needs Node.js and npm")
    cache = Path(os.environ.get("SF_SUITE_NPM_CACHE", Path.home() / ".cache" / "salesforce-suite-tests" / "npm"))
    target = cache / f"{PACKAGE}-{VERSION}"
    if not (target / "node_modules" / "underscore" / "package.json").exists():
        target.mkdir(parents=True, exist_ok=True)
        (target / "package.json").write_text(json.dumps({"private": True, "type": "module"}))
        # avro-js (its Avro library) requires underscore without declaring it: installed beside it
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", f"{PACKAGE}@{VERSION}",
                               "underscore@1"], cwd=target, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip(f"npm could not install {PACKAGE}@{VERSION}: {done.stderr[-400:]}")
    script = target / SCRIPT.name  # beside its node_modules, so the import resolves
    script.write_text(SCRIPT.read_text())
    return target


def test_node_client_publishes_subscribes_and_decodes_bitmaps(ps: PubSub, node_client_dir: Path) -> None:
    assert ps.sf.admin("POST", "streaming/config", {"cdc_entities": ["Contact"]}).status_code == 200
    assert ps.sf.post(f"{V}/sobjects/Order_Shipped__e", json={"OrderNumber__c": "REST-1"}).status_code == 201
    contact_id = ps.sf.post(f"{V}/sobjects/Contact", json={"FirstName": "Ada", "LastName": "Lovelace"}).json()["id"]
    assert ps.sf.patch(f"{V}/sobjects/Contact/{contact_id}", json={"FirstName": "Augusta", "Phone": "42"}
                       ).status_code == 204
    sub = ps.sf.post(f"{V}/tooling/sobjects/ManagedEventSubscription", json={
        "FullName": "Node_Sub", "Metadata": {"label": "Node", "topicName": "/event/Order_Shipped__e",
                                             "defaultReplay": "EARLIEST", "state": "RUN"}}).json()["id"]
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": ps.server.ca_bundle}  # Node's own switch for its HTTPS (Tooling)
    done = subprocess.run(["node", str(node_client_dir / SCRIPT.name), ps.token, ps.server.url, ps.tenant,
                           ps.server.pubsub_endpoint, "Node_Sub"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    docs = {key: value for line in done.stdout.splitlines() if line.startswith("{")
            for key, value in json.loads(line).items()}
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
