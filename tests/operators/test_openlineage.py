"""OpenLineage from a real DAG run (``dag.test()``) against the emulator, read back from
OpenLineage's file transport: the datasets, schemas and row counts each operator reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow.providers.openlineage")


@pytest.fixture
def lineage_events(monkeypatch, tmp_path: Path):
    """Route OpenLineage to a file transport for this test; returns a reader of the COMPLETE events."""
    from airflow.providers.openlineage import conf as ol_conf
    from airflow.providers.openlineage.plugins import listener as ol_listener

    events = tmp_path / "openlineage.jsonl"
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT",
                       json.dumps({"type": "file", "log_file_path": str(events), "append": True}))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "False")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "salesforce_suite_tests")
    for name in dir(ol_conf):  # the provider caches its config
        if hasattr(getattr(ol_conf, name), "cache_clear"):
            getattr(ol_conf, name).cache_clear()
    listener = ol_listener.get_openlineage_listener()
    monkeypatch.setattr(listener.adapter, "_client", None, raising=False)
    # The provider's plugin decides at import whether it has a listener (`conf.is_disabled()` in its
    # class body): when an earlier dag.test() in this process loaded plugins with OpenLineage off,
    # it has none for good. Register the listener ourselves, then take it away again.
    from airflow.listeners.listener import get_listener_manager as core_listeners
    from airflow.sdk.listener import get_listener_manager as task_listeners

    added = []
    for manager in {id(m): m for m in (core_listeners(), task_listeners())}.values():
        if not manager.pm.is_registered(listener):
            manager.add_listener(listener)
            added.append(manager)

    def read(event_type: str = "COMPLETE") -> dict[str, dict[str, Any]]:
        """task id -> its event of ``event_type``."""
        out = {}
        for line in events.read_text().splitlines() if events.exists() else []:
            event = json.loads(line)
            if event.get("eventType") == event_type and "." in event["job"]["name"]:
                out[event["job"]["name"].split(".", 1)[1]] = event
        return out

    yield read
    for manager in added:
        manager.pm.unregister(listener)


def _fields(dataset: dict[str, Any]) -> dict[str, str | None]:
    return {f["name"]: f.get("type") for f in dataset["facets"].get("schema", {}).get("fields", [])}


def _dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "example_dags")).get_dag(dag_id)


def _one(datasets: list[dict[str, Any]], namespace: str, name: str) -> dict[str, Any]:
    """The dataset named so. Not an exact list: under ``dag.test()`` every task runs in one process,
    and Airflow's hook-level lineage (files touched through ``ObjectStoragePath``, merged in by the
    OpenLineage provider) is collected process-wide, so earlier tasks' files show up too."""
    found = [d for d in datasets if (d["namespace"], d["name"]) == (namespace, name)]
    assert len(found) == 1, [(d["namespace"], d["name"]) for d in datasets]
    return found[0]


def _namespace(server: Any) -> str:
    return "salesforce://" + server.url.split("://", 1)[1].rstrip("/")


def test_bulk_load_reports_the_file_the_object_its_fields_and_rows(
        airflow_db, salesforce_connection, salesforce_emulator_reset, lineage_events, tmp_path: Path) -> None:
    run = _dag("example_salesforce_bulk_load").test(run_conf={"rows": 300, "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"
    event = lineage_events()["bulk_load_accounts"]
    _one(event["inputs"], "file", f"{tmp_path}/accounts.csv")
    account = _one(event["outputs"], _namespace(salesforce_emulator_reset), "Account")
    fields = _fields(account)
    assert fields["Name"] == "string" and fields["NumberOfEmployees"] == "int", fields
    assert account["outputFacets"]["outputStatistics"]["rowCount"] == 300


def test_rest_files_reports_loads_and_soql_to_file_extracts(
        airflow_db, salesforce_connection, salesforce_emulator_reset, lineage_events, tmp_path: Path) -> None:
    run = _dag("example_salesforce_rest_files").test(run_conf={"accounts": 10, "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"
    events = lineage_events()
    namespace = _namespace(salesforce_emulator_reset)

    load = events["load_accounts"]
    _one(load["inputs"], "file", f"{tmp_path}/accounts.csv")
    account = _one(load["outputs"], namespace, "Account")
    assert account["outputFacets"]["outputStatistics"]["rowCount"] == 8  # 2 of 10 rows have no Name

    export = events["export_parquet"]
    queried = _one(export["inputs"], namespace, "Account")
    # the plain fields of the select list, typed by describe (Owner.Name is a parent's field)
    assert _fields(queried) == {"Id": "id", "Name": "string", "Industry": "picklist", "NumberOfEmployees": "int"}
    assert queried["inputFacets"]["inputStatistics"]["rowCount"] == 8
    written = _one(export["outputs"], "file", f"{tmp_path}/accounts.parquet")
    assert list(_fields(written)) == ["Id", "Name", "Industry", "NumberOfEmployees", "Owner.Name"]
    assert written["outputFacets"]["outputStatistics"]["rowCount"] == 8

    # START: the file only; the org's datasets need the instance URL, known once the task logged in
    start = lineage_events("START")["export_parquet"]
    assert [d for d in start["inputs"] + start["outputs"] if d["namespace"].startswith("salesforce://")] == []
    _one(start["outputs"], "file", f"{tmp_path}/accounts.parquet")


def test_analytics_upload_reports_the_file_and_the_dataset(
        airflow_db, salesforce_connection, salesforce_emulator_reset, lineage_events, tmp_path: Path) -> None:
    run = _dag("example_salesforce_analytics").test(run_conf={"rows": 30, "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"
    event = lineage_events()["load_sales"]
    [source] = [d for d in event["inputs"] if d["name"].endswith(".csv") and d["facets"].get("schema")]
    assert source["namespace"] == "file"
    dataset = _one(event["outputs"], _namespace(salesforce_emulator_reset), "analytics/Sales")
    assert list(_fields(dataset)) == list(_fields(source)) != []
    assert dataset["outputFacets"]["outputStatistics"]["rowCount"] == 30


def test_pardot_import_and_export_report_prospects_and_visitor_activities(
        airflow_db, pardot_conn, pardot_admin, salesforce_emulator_reset, lineage_events, tmp_path: Path) -> None:
    unit = "0Uv000000000001AAA"  # tests/conftest.py PARDOT_BUSINESS_UNIT

    pardot_conn("salesforce_pardot_default")
    pardot_admin("/seed", object="visitor-activities",
                 records=[{"prospectId": n, "type": 1, "details": f"page {n}"} for n in range(4)])
    run = _dag("example_salesforce_pardot").test(run_conf={"rows": 6, "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"
    events = lineage_events()
    namespace = "pardot://" + salesforce_emulator_reset.url.split("://", 1)[1].rstrip("/")

    imported = events["import_prospects"]
    source = _one(imported["inputs"], "file", f"{tmp_path}/prospects.csv")
    assert list(_fields(source)) == ["email", "firstName", "company"]
    prospects = _one(imported["outputs"], namespace, f"{unit}/prospect")
    assert prospects["outputFacets"]["outputStatistics"]["rowCount"] == 5  # one row has no valid email

    exported = events["export_visitor_activities"]
    activities = _one(exported["inputs"], namespace, f"{unit}/visitorActivity")
    assert activities["inputFacets"]["inputStatistics"]["rowCount"] == 4
    written = _one(exported["outputs"], "file", f"{tmp_path}/visitor_activities.csv")
    assert list(_fields(written)) == ["id", "prospectId", "type", "details", "createdAt"]
    assert written["outputFacets"]["outputStatistics"]["rowCount"] == 4
