"""No secret reaches task logs: a separate process, logging as Airflow's task processes do (the
Task SDK's logging configuration, secrets masker on), runs a DAG whose tasks log every secret they
can reach; one task succeeds and one fails with our exception and its traceback.

(``airflow dags test`` itself is not used: in Airflow 3.3 its console logging does not apply the
Task SDK's masker at all, so it would prove nothing about what workers write.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pytest

from airflow_provider_salesforce_suite.emulator.config import ConnectedAppConfig, EmulatorConfig, UserConfig
from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

USERNAME = "probe.user@example.com"
PASSWORD = "Pr0be-Pa55w0rd-5b1e"
SECURITY_TOKEN = "Tok3nProbe9c2d7e"
CONSUMER_KEY = "probe-app"
CONSUMER_SECRET = "Pr0be-C0nsumer-S3cret-77aa"
# A password with every character that changes under URL, JSON or XML encoding.
ECHO_PASSWORD = 'p@ss w+rd/&=%"\\é'


_RUNNER = """
import os, sys
from airflow.sdk.log import configure_logging
configure_logging(output=open(sys.argv[1], "w"), colored_console_log=False)  # as task processes do
from airflow.dag_processing.dagbag import DagBag
run = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag("secrets_probe").test()
print("STATE", run.state)
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
with create_session() as session:
    for row in session.query(XComModel).filter(XComModel.run_id == run.run_id):
        print("XCOM", row.task_id, row.key, row.value)
"""


@pytest.fixture(scope="module")
def probe_emulator(tmp_path_factory: pytest.TempPathFactory):
    config = EmulatorConfig()
    config.add_user(UserConfig(username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN))
    config.add_connected_app(
        ConnectedAppConfig(name="Probe", consumer_key=CONSUMER_KEY, consumer_secret=CONSUMER_SECRET)
    )
    with EmulatorServer(cert_dir=tmp_path_factory.mktemp("probe-certs"), config=config) as server:
        yield server


def test_task_logs_and_errors_never_show_secrets(probe_emulator: EmulatorServer, tmp_path: Path) -> None:
    connection = {
        "conn_type": "salesforce_suite",
        "host": probe_emulator.url,
        "login": USERNAME,
        "password": PASSWORD,
        "extra": {
            "consumer_key": CONSUMER_KEY,
            "consumer_secret": CONSUMER_SECRET,
            "security_token": SECURITY_TOKEN,
            "ca_bundle": str(probe_emulator.ca_bundle),
        },
    }
    home = tmp_path / "airflow_home"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).parent / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT": json.dumps(connection),
        "AIRFLOW_CONN_SALESFORCE_ECHO": json.dumps({**connection, "password": ECHO_PASSWORD}),
    }
    # The token endpoint echoes the form body of the first token request (the echo task's).
    echoed_form = urlencode({"grant_type": "password", "username": USERNAME, "password": ECHO_PASSWORD + SECURITY_TOKEN})
    probe_emulator.state.faults.add({"status": 400, "body": echoed_form, "content_type": "text/plain", "count": 1,
                                     "path_prefix": "/services/oauth2/token"})
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    log_file = tmp_path / "task.log"
    run = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(log_file)], env=env, capture_output=True, text=True, timeout=300
    )
    assert "STATE failed" in run.stdout, run.stderr[-3000:]

    output = log_file.read_text(errors="replace") + run.stdout + run.stderr
    # The run happened: one task succeeded, the other failed with our query error and traceback.
    assert "debug: token=*** password=*** secret=***" in output
    assert "about to fail with session ***" in output
    assert "SalesforceMalformedQueryError" in output and "MALFORMED_QUERY" in output
    # The echo task's error went to the log and, as its return value, to XCom: masked in both.
    assert "XCOM echoed_password_task return_value" in output and "caught: Salesforce OAuth" in output
    assert "token call failed: Salesforce OAuth (password) failed with HTTP 400" in output
    echoed = [ECHO_PASSWORD, quote_plus(ECHO_PASSWORD), quote(ECHO_PASSWORD, safe=""),
              json.dumps(ECHO_PASSWORD)[1:-1], json.dumps(ECHO_PASSWORD, ensure_ascii=False)[1:-1]]
    for form in echoed:
        assert form not in output, f"an encoding of the password reached the logs or XCom: {form!r}"

    tokens = [session.token for session in probe_emulator.state.sessions._sessions.values()]
    assert tokens, "the tasks authenticated"
    for secret in [PASSWORD, SECURITY_TOKEN, CONSUMER_SECRET, *tokens]:
        assert secret not in output, f"a secret reached the logs ({len(secret)} chars)"
