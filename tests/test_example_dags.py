"""Every example DAG runs end to end with ``dag.test()`` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_dags"


def _dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(EXAMPLES))


def test_example_dags_parse_without_errors() -> None:
    bag = _dag_bag()
    assert bag.import_errors == {}
    assert "example_salesforce_rest_basics" in bag.dag_ids


def test_rest_basics_creates_exports_and_updates(airflow_db, salesforce_connection, tmp_path: Path) -> None:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    dag = _dag_bag().get_dag("example_salesforce_rest_basics")
    output = tmp_path / "out" / "accounts.jsonl"
    run = dag.test(run_conf={"accounts": 4, "output_uri": f"file://{output}"})
    assert run.state == "success"

    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 4
    hook = SalesforceRestHook(salesforce_conn_id=salesforce_connection)
    for row in rows:
        record = hook.get("Account", row["Id"], fields=["Name", "Description", "Rating"])
        assert record["Description"] == "Updated by Airflow"
        assert record["Rating"] == "Hot"
        assert record["Name"] == row["Name"]


def test_rest_files_loads_exports_updates_and_keeps_failures(airflow_db, salesforce_connection, tmp_path: Path) -> None:
    import csv

    from airflow_provider_salesforce_suite.io import iter_records

    dag = _dag_bag().get_dag("example_salesforce_rest_files")
    run = dag.test(run_conf={"accounts": 10, "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"

    failed = list(csv.DictReader((tmp_path / "accounts.failed.csv").open()))
    assert len(failed) == 2  # rows 4 and 9 have no Name
    assert all(row["sf__Error"].startswith("REQUIRED_FIELD_MISSING:") and row["sf__Fields"] == "Name" for row in failed)
    assert [row["NumberOfEmployees"] for row in failed] == ["50", "100"]

    exported = list(iter_records(tmp_path / "accounts.parquet"))
    assert len(exported) == 8 and all(row["Owner.Name"] for row in exported)
    updated = list(iter_records(tmp_path / "accounts_updated.jsonl"))
    assert [row["Id"] for row in updated] == [row["Id"] for row in exported]
    assert [row["Rating"] for row in updated] == ["Warm"] * 4 + ["Hot"] * 4


def test_bulk_load_ingests_a_generated_csv_and_keeps_failures(airflow_db, salesforce_connection, tmp_path: Path) -> None:
    import csv

    from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook

    dag = _dag_bag().get_dag("example_salesforce_bulk_load")
    run = dag.test(run_conf={"rows": 3_000, "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"
    failed = list(csv.DictReader((tmp_path / "results" / "failed.csv").open()))
    assert [row["sf__InputRow"] for row in failed] == ["1000", "2000", "3000"]
    assert all(row["sf__Error"].startswith("REQUIRED_FIELD_MISSING") for row in failed)
    assert sum(1 for _ in csv.DictReader((tmp_path / "results" / "successful.csv").open())) == 2_997
    hook = SalesforceBulkHook(salesforce_connection)
    loaded = hook.request("GET", hook.data_url("query"), params={"q": "SELECT COUNT() FROM Account"}).json()
    assert loaded["totalSize"] == 2_997


def test_bulk_incremental_extracts_only_changes_across_runs(airflow_db, salesforce_connection, tmp_path: Path) -> None:
    import time

    from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
    from airflow_provider_salesforce_suite.io import iter_records

    hook = SalesforceBulkHook(salesforce_connection)
    hook.ingest("Account", "insert", [{"Name": f"Inc {i}"} for i in range(20)], results_dir=tmp_path / "seed",
                poll_interval=0.05)
    time.sleep(1.1)  # the newest record alone in its second: the first run's watermark
    hook.ingest("Account", "insert", [{"Name": "Zed edge"}], results_dir=tmp_path / "seed2", poll_interval=0.05)
    dag = _dag_bag().get_dag("example_salesforce_bulk_incremental")
    conf = {"output_dir": f"file://{tmp_path}/out", "lookback_seconds": 0}
    assert dag.test(run_conf={**conf, "touch": 0}).state == "success"
    time.sleep(1.1)
    assert dag.test(run_conf={**conf, "touch": 3}).state == "success"
    files = sorted((tmp_path / "out").glob("accounts_*.jsonl"), key=lambda p: p.stat().st_mtime)
    assert len(files) == 2
    assert len(list(iter_records(files[0]))) == 21  # first run: everything
    changed = {row["Name"]: row for row in iter_records(files[1])}
    # The 3 touched accounts, and the record on the watermark's edge again (an overlap, never a gap).
    assert sorted(changed) == ["Inc 0", "Inc 1", "Inc 10", "Zed edge"]
    assert all(changed[name]["Description"].startswith("touched") for name in ("Inc 0", "Inc 1", "Inc 10"))


def test_soap_converts_leads_and_merges_duplicates(airflow_db, salesforce_connection) -> None:
    from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

    dag = _dag_bag().get_dag("example_salesforce_soap")
    run = dag.test(run_conf={"leads": 3})
    assert run.state == "success"
    hook = SalesforceSoapHook(salesforce_connection)
    assert [r["IsConverted"] for r in hook.query("SELECT IsConverted FROM Lead")] == [True] * 3
    names = [r["Name"] for r in hook.query("SELECT Name FROM Account WHERE Name LIKE 'Dupe %'")]
    assert len(names) == 2 and len(set(names)) == 2  # 2 + 3 copies merged down to one each


def test_analytics_loads_a_dataset_runs_a_dataflow_and_queries(airflow_db, salesforce_connection, tmp_path: Path) -> None:
    from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook

    dag = _dag_bag().get_dag("example_salesforce_analytics")
    run = dag.test(run_conf={"rows": 300, "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"
    hook = SalesforceAnalyticsHook(salesforce_connection)
    records = hook.query_records('q = load "Sales"; q = group q by all; q = foreach q generate count() as \'n\';')
    assert records == [{"n": 300}]
    jobs = list(hook.iter_dataflow_jobs())
    assert [j["status"] for j in jobs] == ["Success"]


def test_streaming_sensor_waits_for_a_hot_account(airflow_db, salesforce_connection, emulator_admin) -> None:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    emulator_admin._call("POST", "streaming/config", {"cdc_entities": ["Account"]})  # Setup -> Change Data Capture
    hook = SalesforceRestHook(salesforce_connection)
    cold = hook.create("Account", {"Name": "Cold prospect", "Rating": "Cold"})
    hot = hook.create("Account", {"Name": "Hot prospect", "Rating": "Hot"})
    dag = _dag_bag().get_dag("example_salesforce_streaming_sensor")
    # -2 replays the retained change events, so the change made above is found without a race.
    run = dag.test(run_conf={"replay_id": -2, "timeout": 60})
    assert run.state == "success"
    (report,) = [ti for ti in run.get_task_instances() if ti.task_id == "report"]
    assert report.xcom_pull(task_ids="report") == [hot] and cold != hot


def test_new_opportunity_setup_ensures_the_push_topic(airflow_db, salesforce_connection) -> None:
    from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

    dag = _dag_bag().get_dag("example_salesforce_new_opportunity_setup")
    assert dag.test().state == "success"
    topic = SalesforceStreamingHook(salesforce_connection).get_push_topic("NewOpportunities")
    assert topic["Query"].startswith("SELECT Id, Name, StageName") and topic["NotifyForOperationCreate"] is True
    assert topic["NotifyForOperationUpdate"] is False
    # The asset-triggered DAG parses with its watcher; it runs in tests/integration.
    consumer = _dag_bag().get_dag("example_salesforce_new_opportunity")
    assert [asset.uri for asset in consumer.timetable.asset_condition.objects] == [
        "salesforce://default/topic/NewOpportunities"]


def test_desk_exports_new_cases(airflow_db, sf_conn, tmp_path: Path) -> None:
    from airflow_provider_salesforce_suite.hooks.desk import DeskHook

    conn = sf_conn("salesforce_desk_default", conn_type="salesforce_desk")
    hook = DeskHook(conn)
    wanted = [hook.create_case(f"New case {n}")["id"] for n in range(3)]
    hook.create_case("Already open", status="open")
    output = tmp_path / "desk" / "new_cases.jsonl"
    run = _dag_bag().get_dag("example_salesforce_desk").test(run_conf={"output_uri": f"file://{output}"})
    assert run.state == "success"
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["id"] for row in rows] == wanted and {row["status"] for row in rows} == {"new"}
    (report,) = [ti for ti in run.get_task_instances() if ti.task_id == "report"]
    assert report.xcom_pull(task_ids="report") == 3


def test_pardot_imports_prospects_and_exports_visitor_activities(airflow_db, pardot_conn, pardot_admin,
                                                                 tmp_path: Path) -> None:
    import csv

    from airflow_provider_salesforce_suite.hooks.pardot import PardotHook

    conn = pardot_conn("salesforce_pardot_default")
    pardot_admin("/seed", object="visitor-activities",
                 records=[{"prospectId": n, "type": 1, "details": f"page {n}"} for n in range(4)])
    dag = _dag_bag().get_dag("example_salesforce_pardot")
    run = dag.test(run_conf={"rows": 6, "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"
    errors = list(csv.DictReader((tmp_path / "errors.csv").open()))
    assert [row["email"] for row in errors] == ["not-an-email"]
    prospects = list(PardotHook(conn).iter_records("prospects", ["email"]))
    assert len(prospects) == 5
    activities = list(csv.DictReader((tmp_path / "visitor_activities.csv").open()))
    assert [row["details"] for row in activities] == [f"page {n}" for n in range(4)]


def test_reliable_loads_survive_a_lost_reply(airflow_db, salesforce_connection, salesforce_emulator_reset,
                                             tmp_path: Path) -> None:
    """Salesforce commits the second Collections insert but its reply is lost: the insert finds those
    leads by their keys instead of sending them again, so every lead exists once."""
    import requests

    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    server = salesforce_emulator_reset
    rule = {"lose_reply": True, "method": "POST", "path_prefix": "/services/data/v64.0/composite/sobjects",
            "count": 1}
    requests.post(f"{server.url}/__emulator__/faults", json=rule, verify=server.ca_bundle, timeout=10).raise_for_status()
    run = _dag_bag().get_dag("example_salesforce_reliable_loads").test(
        run_conf={"leads": 450, "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"
    stats = requests.get(f"{server.url}/__emulator__/stats", verify=server.ca_bundle, timeout=10).json()
    assert stats["connections_dropped"] == 1
    hook = SalesforceRestHook(salesforce_conn_id=salesforce_connection)
    leads = list(hook.query("SELECT Title, Status FROM Lead WHERE LastName LIKE 'Reliable %'"))
    assert len(leads) == 450 and len({lead["Title"] for lead in leads}) == 450
    assert {lead["Status"] for lead in leads} == {"Working - Contacted"}


@pytest.fixture(scope="module")
def _platform_event_emulator(tmp_path_factory):
    """An emulator that defines the example's platform event, with its Pub/Sub API on a free port."""
    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    schema = tmp_path_factory.mktemp("pubsub-example-schema") / "schema.json"
    schema.write_text(json.dumps({"objects": {"Order_Shipped__e": {"fields": {
        "OrderNumber__c": {"type": "text", "length": 20}}}}}))
    server = EmulatorServer(cert_dir=tmp_path_factory.mktemp("pubsub-example-certs"), schema_files=[schema],
                            pubsub_port=0).start()
    yield server
    server.stop()


def test_pubsub_publishes_platform_events_and_watches_changes(airflow_db, _platform_event_emulator, monkeypatch,
                                                              tmp_path: Path) -> None:
    import asyncio

    from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubTrigger

    server = _platform_event_emulator
    server.reset()
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT", server.connection_json())
    run = _dag_bag().get_dag("example_salesforce_pubsub_publish").test(
        run_conf={"orders": ["ON-7", "ON-8", "ON-9"], "output_dir": f"file://{tmp_path}"})
    assert run.state == "success"
    results = [json.loads(line) for line in (tmp_path / "order_shipped_results.jsonl").read_text().splitlines()]
    assert [row["index"] for row in results] == [0, 1, 2]
    assert all(row["replay_id"] and row["error_code"] is None for row in results)
    # The events are on the bus: a subscriber replaying the topic sees them, with their replay ids.
    trigger = SalesforcePubSubTrigger(topic="/event/Order_Shipped__e", replay_preset="EARLIEST", event_count=3,
                                      timeout=30)
    (fired,) = asyncio.run(_collect(trigger))
    assert fired.payload["status"] == "success"
    assert [e["payload"]["OrderNumber__c"] for e in fired.payload["events"]] == ["ON-7", "ON-8", "ON-9"]
    assert [e["replay_id"] for e in fired.payload["events"]] == [row["replay_id"] for row in results]
    # The change-driven DAG parses with its Pub/Sub watcher; it runs in tests/integration.
    consumer = _dag_bag().get_dag("example_salesforce_pubsub")
    (asset,) = consumer.timetable.asset_condition.objects
    assert asset.uri == "salesforce://default/data/AccountChangeEvent"
    (watcher,) = asset.watchers
    assert watcher.trigger.serialize()[0].endswith("SalesforcePubSubEventTrigger")


async def _collect(trigger) -> list:
    return [event async for event in trigger.run()]
