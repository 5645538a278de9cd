"""A ``salesforce_suite`` connection works from every place Airflow reads connections:
an ``AIRFLOW_CONN_`` JSON value, an ``AIRFLOW_CONN_`` URI, and ``airflow connections add``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook


def _emulator_fields(server) -> dict:
    return json.loads(server.connection_json())


def test_json_connection(salesforce_emulator_reset, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SF_JSON", salesforce_emulator_reset.connection_json())
    hook = SalesforceRestHook(salesforce_conn_id="sf_json")
    assert hook.create("Account", {"Name": "From JSON"})
    assert hook.instance_url == salesforce_emulator_reset.url


def test_uri_connection_with_host_and_port(salesforce_emulator_reset, monkeypatch) -> None:
    fields = _emulator_fields(salesforce_emulator_reset)
    parts = urlsplit(salesforce_emulator_reset.url)
    extra = fields["extra"]
    query = "&".join(f"{key}={quote(str(value), safe='')}" for key, value in extra.items())
    uri = f"salesforce-suite://{quote(fields['login'], safe='')}:{quote(fields['password'], safe='')}@{parts.hostname}:{parts.port}?{query}"
    monkeypatch.setenv("AIRFLOW_CONN_SF_URI", uri)
    hook = SalesforceRestHook(salesforce_conn_id="sf_uri")
    assert hook.config.login_url == salesforce_emulator_reset.url
    assert hook.create("Account", {"Name": "From URI"})


def test_cli_added_connection_is_used_by_a_dag_run(airflow_db, salesforce_emulator_reset, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT", raising=False)
    fields = _emulator_fields(salesforce_emulator_reset)
    airflow = str(Path(sys.executable).parent / "airflow")
    env = os.environ.copy()
    subprocess.run([airflow, "connections", "delete", "salesforce_suite_default"], env=env, capture_output=True)
    subprocess.run(
        [airflow, "connections", "add", "salesforce_suite_default", "--conn-type", "salesforce_suite",
         "--conn-host", fields["host"], "--conn-login", fields["login"], "--conn-password", fields["password"],
         "--conn-extra", json.dumps(fields["extra"])],
        env=env, check=True, capture_output=True,
    )
    try:
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag("example_salesforce_rest_basics")
        output = tmp_path / "accounts.jsonl"
        run = dag.test(run_conf={"accounts": 2, "output_uri": f"file://{output}"})
        assert run.state == "success"
        assert len(output.read_text().splitlines()) == 2
    finally:
        subprocess.run([airflow, "connections", "delete", "salesforce_suite_default"], env=env, capture_output=True)
