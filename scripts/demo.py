"""``make demo``: start the emulator, run the example DAGs end to end with ``airflow dags test``,
print what happened, stop the emulator.

Everything lives under ``.demo/`` in the project: the Airflow home (SQLite metadata database),
the emulator's certificate and the files the DAGs write.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
# Where the demo keeps its Airflow home, certificate and output (``--workdir`` overrides).
DEMO = Path(os.environ.get("SALESFORCE_SUITE_DEMO_DIR", ROOT / ".demo")).resolve()
BIN = Path(sys.executable).parent

# (dag id, run conf) in the order they run. Each API issue adds its example DAGs here.
DEMO_DAGS: list[tuple[str, dict]] = [
    (
        "example_salesforce_rest_basics",
        {"accounts": 5, "output_uri": f"file://{DEMO / 'output' / 'accounts.jsonl'}"},
    ),
    ("example_salesforce_rest_files", {"accounts": 10, "output_dir": f"file://{DEMO / 'output' / 'rest_files'}"}),
    ("example_salesforce_bulk_load", {"rows": 2000, "output_dir": f"file://{DEMO / 'output' / 'bulk_load'}"}),
    (
        "example_salesforce_bulk_incremental",
        {"touch": 3, "lookback_seconds": 0, "output_dir": f"file://{DEMO / 'output' / 'bulk_incremental'}"},
    ),
    ("example_salesforce_soap", {"leads": 3}),
    ("example_salesforce_reliable_loads", {"leads": 450, "output_dir": f"file://{DEMO / 'output' / 'reliable_loads'}"}),
    (
        "example_salesforce_pubsub_publish",
        {"orders": ["ON-1001", "ON-1002", "ON-1003"], "output_dir": f"file://{DEMO / 'output' / 'pubsub'}"},
    ),
]
# The emulator's custom schema: the platform event the Pub/Sub example publishes.
DEMO_SCHEMA = {"objects": {"Order_Shipped__e": {"fields": {"OrderNumber__c": {"type": "text", "length": 20}}}}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, ca_bundle: Path, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"emulator exited early with code {process.returncode}")
        try:
            if requests.get(f"{url}/services/data/", verify=str(ca_bundle), timeout=2).ok:
                return
        except (requests.ConnectionError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"emulator did not answer at {url} within {timeout:.0f}s")


def _token(url: str, ca_bundle: Path) -> str:
    reply = requests.post(
        f"{url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": "emulator",
            "client_secret": "emulator",
            "username": "admin@emulator.local",
            "password": "emulator",
        },
        verify=str(ca_bundle),
        timeout=10,
    )
    reply.raise_for_status()
    return reply.json()["access_token"]


def _summary(url: str, ca_bundle: Path) -> None:
    headers = {"Authorization": f"Bearer {_token(url, ca_bundle)}"}
    counts = requests.get(
        f"{url}/services/data/v64.0/limits/recordCount", headers=headers, verify=str(ca_bundle), timeout=10
    )
    print("\n=== What the example DAGs did ===")
    if counts.ok:
        for item in counts.json().get("sObjects", []):
            if item["count"]:
                print(f"  records in the emulator: {item['name']:<20} {item['count']}")
    query = requests.get(
        f"{url}/services/data/v64.0/query",
        params={"q": "SELECT Name, Rating, Description FROM Account WHERE Rating = 'Hot' ORDER BY Name LIMIT 5"},
        headers=headers,
        verify=str(ca_bundle),
        timeout=10,
    )
    query.raise_for_status()
    for record in query.json()["records"]:
        print(f"  Account {record['Name']!r}: Rating={record['Rating']}, Description={record['Description']!r}")
    for produced in sorted((DEMO / "output").rglob("*")):
        if produced.is_file():
            print(f"  file produced: {produced.relative_to(DEMO.parent)} ({_rows(produced)})")


def _rows(path: Path) -> str:
    """How much a produced file holds: rows for Parquet, lines for text files."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return f"{pq.read_metadata(path).num_rows} rows"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return f"{sum(1 for _ in handle)} lines"


def main() -> int:
    shutil.rmtree(DEMO / "airflow_home", ignore_errors=True)
    shutil.rmtree(DEMO / "output", ignore_errors=True)
    (DEMO / "output").mkdir(parents=True)
    port, pubsub_port = _free_port(), _free_port()
    url = f"https://127.0.0.1:{port}"
    cert_dir = DEMO / "certs"
    ca_bundle = cert_dir / "cert.pem"
    schema = DEMO / "schema.json"
    schema.write_text(json.dumps(DEMO_SCHEMA))
    emulator = subprocess.Popen(
        [str(BIN / "salesforce-suite-emulator"), "--port", str(port), "--cert-dir", str(cert_dir),
         "--pubsub-port", str(pubsub_port), "--schema", str(schema)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(url, ca_bundle, emulator)
        print(f"emulator up at {url} (CA bundle {ca_bundle})")
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(DEMO / "airflow_home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT": json.dumps(
                {
                    "conn_type": "salesforce_suite",
                    "host": url,
                    "login": "admin@emulator.local",
                    "password": "emulator",
                    "extra": {
                        "consumer_key": "emulator",
                        "consumer_secret": "emulator",
                        "ca_bundle": str(ca_bundle),
                        "pubsub_endpoint": f"127.0.0.1:{pubsub_port}",
                    },
                }
            ),
        }
        airflow = str(BIN / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        for dag_id, conf in DEMO_DAGS:
            print(f"running {dag_id} ...")
            done = subprocess.run(
                [airflow, "dags", "test", dag_id, "--conf", json.dumps(conf)],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
                print(f"{dag_id} FAILED")
                return 1
            print(f"{dag_id}: success")
        _summary(url, ca_bundle)
        return 0
    finally:
        emulator.terminate()
        try:
            emulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emulator.kill()
        print("emulator stopped")


if __name__ == "__main__":
    sys.exit(main())
