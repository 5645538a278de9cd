"""``salesforce-suite-emulator snapshot``: emulator A (custom schema + records) -> snapshot through an
Airflow connection -> emulator B started with the file: same describe results, sampled records."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from sf_emulator_client import emulator_with_schema

from airflow_provider_salesforce_suite.emulator import cli
from airflow_provider_salesforce_suite.emulator.metadata.schema_check import JSON_SCHEMA_PATH
from airflow_provider_salesforce_suite.emulator.server import EmulatorServer
from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

SCHEMA_A = {
    "objects": {
        "Project__c": {"label": "Project", "fields": {
            "Account__c": {"type": "lookup", "referenceTo": "Account", "childRelationshipName": "Projects"},
            "Budget__c": {"type": "currency", "precision": 16, "scale": 2},
            "Stage__c": {"type": "picklist", "values": ["New", {"value": "Done", "label": "Finished", "default": True}]},
            "Code__c": {"type": "text", "length": 12, "externalId": True, "unique": True},
            "Due__c": {"type": "date"},
            "Active__c": {"type": "checkbox", "default": True},
            "Share__c": {"type": "percent", "precision": 5, "scale": 2},
            "Notes__c": {"type": "longtextarea"},
            "Mail__c": {"type": "email"},
            "Site__c": {"type": "url"},
            "Phone__c": {"type": "phone"},
            "Tags__c": {"type": "multipicklist", "values": ["a", "b"], "restricted": False},
            "Start__c": {"type": "datetime"},
            "Count__c": {"type": "int", "digits": 6},
            "Status__c": {"type": "text", "default": "Open", "required": True},
            "Sponsor__c": {"type": "lookup", "referenceTo": "User", "childRelationshipName": "Sponsored"},
            "Api_Password__c": {"type": "text"},
            "Vault__c": {"type": "encryptedtext"},
        }},
        "Task_Item__c": {"nameField": {"type": "autonumber"}, "fields": {
            "Project__c": {"type": "masterdetail", "referenceTo": "Project__c", "childRelationshipName": "Items",
                           "reparentable": True},
            "Hours__c": {"type": "number", "precision": 5, "scale": 1},
        }},
        "Shipped__e": {"fields": {"Ref__c": {"type": "text", "length": 18}}},
        "Vendor_Credential__c": {"fields": {"Value__c": {"type": "text"}}},
    },
    "fields": {"Account": {"Tier__c": {"type": "picklist", "values": ["Gold", "Silver"]}}},
}
SECRETS = ("hunter2-password", "vault-s3cr3t", "vendor-api-key-123")


@pytest.fixture(scope="module")
def org_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """Emulator A: a custom schema and a few records created over REST."""
    with emulator_with_schema(tmp_path_factory.mktemp("org-a"), SCHEMA_A) as server:
        yield server


@pytest.fixture
def conn_a(org_a: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> SalesforceRestHook:
    org_a.reset()
    monkeypatch.setenv("AIRFLOW_CONN_SF_ORG_A", org_a.connection_json())
    return SalesforceRestHook(salesforce_conn_id="sf_org_a")


def _fill(hook: SalesforceRestHook) -> None:
    acme = hook.create("Account", {"Name": "Acme", "Tier__c": "Gold", "Industry": "Banking"})
    hook.create("Account", {"Name": "Globex"})
    hook.create("Contact", {"LastName": "Doe", "FirstName": "Jane", "AccountId": acme})
    project = hook.create("Project__c", {"Name": "P1", "Account__c": acme, "Budget__c": 12.5, "Code__c": "P-1",
                                         "Due__c": "2027-01-31", "Api_Password__c": SECRETS[0], "Vault__c": SECRETS[1],
                                         "Share__c": 12.25, "Notes__c": "long\ntext", "Mail__c": "a@b.co",
                                         "Site__c": "https://x.example", "Tags__c": "a;b", "Count__c": 7,
                                         "Start__c": "2027-01-02T03:04:05.000+0000"})
    hook.create("Project__c", {"Name": "P2", "Stage__c": "New", "Active__c": False})
    hook.create("Task_Item__c", {"Project__c": project, "Hours__c": 1.5})
    hook.create("Vendor_Credential__c", {"Name": "vendor", "Value__c": SECRETS[2]})


def _snapshot(tmp_path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "org.json"
    assert cli.main(["snapshot", "--conn-id", "sf_org_a", *args, "-o", str(out)]) == 0
    text = out.read_text()
    return json.loads(text), text


def test_round_trip_describe_identical_and_records_present(conn_a, tmp_path, monkeypatch) -> None:
    _fill(conn_a)
    document, text = _snapshot(tmp_path, "--objects", "Account", "Contact", "--sample", "10")
    assert set(document["objects"]) == {"Account", "Contact", "Project__c", "Task_Item__c", "Shipped__e",
                                        "Vendor_Credential__c"}
    assert document["omitted"] == {
        "Project__c": {"Api_Password__c": "secret: named like a password, token or key",
                       "Vault__c": "secret: encrypted field"},
        "Vendor_Credential__c": {"(records)": "not sampled: secret: object named like a credential"},
    }
    for secret in (*SECRETS, conn_a.session.token.access_token):
        assert secret not in text
    import jsonschema  # the whole file against the shipped JSON Schema (both forms, every key)

    jsonschema.validate(document, json.loads(JSON_SCHEMA_PATH.read_text()))

    before = {name: conn_a.describe(name) for name in document["objects"]}
    queries = {name: f"SELECT {', '.join(f for f in spec['fields'] if f not in ('Vault__c',))} FROM {name} ORDER BY Id"
               for name, spec in document["objects"].items()
               if spec["queryable"] and "(records)" not in document["omitted"].get(name, {})}
    records_a = {name: list(conn_a.query(soql)) for name, soql in queries.items()}

    with EmulatorServer(cert_dir=tmp_path, schema_files=[tmp_path / "org.json"]) as org_b:
        monkeypatch.setenv("AIRFLOW_CONN_SF_ORG_B", org_b.connection_json())
        hook_b = SalesforceRestHook(salesforce_conn_id="sf_org_b")
        for name, describe_a in before.items():
            describe_b = hook_b.describe(name)
            left_out = set(document["omitted"].get(name, {}))
            fields_a = [f for f in describe_a["fields"] if f["name"] not in left_out]
            assert [f["name"] for f in describe_b["fields"]] == [f["name"] for f in fields_a]
            for field_a, field_b in zip(fields_a, describe_b["fields"]):
                assert field_b == field_a, f"{name}.{field_a['name']}"
            assert {k: v for k, v in describe_b.items() if k != "fields"} == \
                {k: v for k, v in describe_a.items() if k != "fields"}, name
        for name, soql in queries.items():
            soql = soql.replace(", Api_Password__c", "")
            expected = [{k: v for k, v in r.items() if k != "Api_Password__c"} for r in records_a[name]]
            assert list(hook_b.query(soql)) == expected, name
        assert len(records_a["Project__c"]) == 2 and len(records_a["Contact"]) == 1
        assert list(hook_b.query("SELECT Id FROM Vendor_Credential__c")) == []
        seeded = {r["Id"] for rows in records_a.values() for r in rows}
        assert hook_b.create("Project__c", {"Name": "P3", "Code__c": "P-3"}) not in seeded  # B makes new ids


def test_references_outside_the_sample_are_dropped_and_the_file_loads(conn_a, tmp_path, monkeypatch) -> None:
    first = conn_a.create("Account", {"Name": "First"})
    second = conn_a.create("Account", {"Name": "Second"})
    assert first < second
    kept = conn_a.create("Project__c", {"Name": "Kept", "Account__c": first})
    conn_a.create("Project__c", {"Name": "Dropped", "Account__c": second})
    document, _ = _snapshot(tmp_path, "--objects", "Account", "--sample", "1")
    assert [r["Name"] for r in document["records"]["Account"]] == ["First"]
    assert document["records"]["Project__c"] == [
        {k: v for k, v in document["records"]["Project__c"][0].items()}]
    assert document["records"]["Project__c"][0]["Id"] == kept
    assert document["records"]["Project__c"][0]["Account__c"] == first

    document, _ = _snapshot(tmp_path, "--sample", "5")  # Account not sampled: references to it dropped
    assert "Account" not in document["records"]
    assert all("Account__c" not in r for r in document["records"]["Project__c"])
    with EmulatorServer(cert_dir=tmp_path, schema_files=[tmp_path / "org.json"]) as org_b:
        monkeypatch.setenv("AIRFLOW_CONN_SF_ORG_B", org_b.connection_json())
        rows = list(SalesforceRestHook(salesforce_conn_id="sf_org_b").query(
            "SELECT Name, Account__c FROM Project__c ORDER BY Name"))
        assert [(r["Name"], r["Account__c"]) for r in rows] == [("Dropped", None), ("Kept", None)]


def test_without_sample_no_records_and_only_custom_objects(conn_a, tmp_path) -> None:
    _fill(conn_a)
    document, _ = _snapshot(tmp_path)
    assert set(document["objects"]) == {"Project__c", "Task_Item__c", "Shipped__e", "Vendor_Credential__c"}
    assert document["records"] == {}
    assert document["objects"]["Project__c"]["fields"]["Account__c"]["childRelationshipName"] == "Projects__r"


def test_unknown_object_is_a_clear_error(conn_a, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["snapshot", "--conn-id", "sf_org_a", "--objects", "Nope__c", "-o", str(tmp_path / "x.json")])
    assert exited.value.code == 2
    assert "the org has no object 'Nope__c'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x.json.partial").exists()


def test_the_console_script_snapshots_and_the_emulator_loads_the_file(conn_a, org_a, tmp_path) -> None:
    """Both as real processes: ``snapshot`` with the connection from the environment, then
    ``--schema`` with the file (the process prints its connection once it served the file)."""
    from test_cli import REPO, _command, _free_port, _start, _stop

    _fill(conn_a)
    out = tmp_path / "org.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "AIRFLOW_CONN_SF_ORG_A": org_a.connection_json()}
    done = subprocess.run([*_command(), "snapshot", "--conn-id", "sf_org_a", "--objects", "Account", "--sample", "3",
                           "-o", str(out)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"wrote {out}: 5 objects, " in done.stdout and "left out" in done.stdout
    assert "described Project__c: " in done.stderr
    for secret in (*SECRETS, conn_a.session.token.access_token):
        assert secret not in done.stdout + done.stderr + out.read_text()
    proc, _ = _start("--port", str(_free_port()), "--no-tls", "--schema", str(out))
    assert _stop(proc) == 0

    help_text = subprocess.run([*_command(), "snapshot", "--help"], capture_output=True, text=True, timeout=60,
                               env=env).stdout
    for needle in ("--conn-id", "--objects", "--sample", "-o FILE", "secrets"):
        assert needle in help_text


def test_an_object_that_refuses_a_query_is_noted_not_fatal(conn_a, org_a, tmp_path) -> None:
    import requests

    _fill(conn_a)
    faults = f"{org_a.url}/__emulator__/faults"
    # The first sampling query (Project__c, in describeGlobal's order) is refused as some objects'
    # are (they need a filter); the others are sampled.
    requests.post(faults, verify=org_a.ca_bundle, timeout=10, json={
        "status": 400, "error_code": "MALFORMED_QUERY", "message": "Implementation restriction: filter needed",
        "path_prefix": "/services/data/v64.0/query", "count": 1}).raise_for_status()
    try:
        document, _ = _snapshot(tmp_path, "--sample", "5")
    finally:
        requests.delete(faults, verify=org_a.ca_bundle, timeout=10).raise_for_status()
    assert document["omitted"]["Project__c"]["(records)"] == \
        "not sampled: MALFORMED_QUERY: Implementation restriction: filter needed"
    assert "Project__c" not in document["records"] and len(document["records"]["Task_Item__c"]) == 1


def test_a_wide_object_is_sampled_in_chunks_of_fields(conn_a, tmp_path, monkeypatch) -> None:
    from airflow_provider_salesforce_suite.emulator import snapshot

    _fill(conn_a)
    fields = list(json.loads(json.dumps(SCHEMA_A))["objects"]["Project__c"]["fields"])
    assert len(snapshot.field_chunks(fields, 60)) > 3 and all(c[0] == "Id" for c in snapshot.field_chunks(fields, 60))
    whole, _ = _snapshot(tmp_path, "--sample", "5")
    monkeypatch.setattr(snapshot, "FIELD_LIST_CHARS", 60)  # every object is "wide" now
    chunked, _ = _snapshot(tmp_path, "--sample", "5")
    assert chunked["records"] == whole["records"] and len(chunked["records"]["Project__c"]) == 2


def test_an_unknown_connection_or_a_refused_login_is_one_line(org_a, tmp_path, capsys, monkeypatch) -> None:
    out = str(tmp_path / "x.json")
    with pytest.raises(SystemExit) as exited:
        cli.main(["snapshot", "--conn-id", "no_such_connection", "-o", out])
    assert exited.value.code == 2 and "no_such_connection" in capsys.readouterr().err
    wrong = json.loads(org_a.connection_json())
    wrong["password"] = "not-the-password-42"
    monkeypatch.setenv("AIRFLOW_CONN_SF_WRONG", json.dumps(wrong))
    with pytest.raises(SystemExit) as exited:
        cli.main(["snapshot", "--conn-id", "sf_wrong", "-o", out])
    err = capsys.readouterr().err
    assert exited.value.code == 1 and "error:" in err and "Traceback" not in err
    assert "not-the-password-42" not in err and not (tmp_path / "x.json").exists()


def test_the_documented_snapshot_excerpt_loads(tmp_path) -> None:
    from pathlib import Path

    from airflow_provider_salesforce_suite.emulator.store import Store

    text = (Path(__file__).resolve().parents[2] / "docs" / "emulator.md").read_text()
    section = text[text.index("### Snapshot a real org"):]
    block = section[section.index("```json\n") + len("```json\n"):section.index("\n```", section.index("```json"))]
    (tmp_path / "excerpt.json").write_text(block)
    store = Store(schema_files=[tmp_path / "excerpt.json"])
    try:
        describe = store.describe("Project__c", api_version="64.0")
        # the audit fields the store writes on every insert come after the file's own
        names = [f["name"] for f in describe["fields"]]
        assert names[:3] == ["Id", "Name", "Account__c"]
        assert names[3:9] == ["IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
                              "SystemModstamp"]
        assert store.query("SELECT Name, CreatedDate FROM Project__c", api_version="64.0")["records"][0]["Name"] == "P1"
        account = store.describe("Account", api_version="64.0")
        assert any(r["relationshipName"] == "Projects__r" for r in account["childRelationships"])
    finally:
        store.close()
