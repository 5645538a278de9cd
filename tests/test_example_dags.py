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
