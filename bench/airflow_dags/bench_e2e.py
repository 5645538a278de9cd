"""The DAGs of bench/bench_airflow.py: the headline benchmarks as real Airflow tasks, deferrable
where the operator can defer. Their files live in ``SF_BENCH_E2E_DIR`` (written by the benchmark
before a run); parsing does no I/O.

* ``bench_e2e_bulk_ingest``: ``accounts.csv`` through ``SalesforceBulkIngestOperator``;
* ``bench_e2e_bulk_extract``: every Account to ``extract.csv`` through ``SalesforceBulkQueryOperator``;
* ``bench_e2e_rest_upsert``: ``upsert.csv`` (``Id`` + two fields) through ``SalesforceUpsertRecordsOperator``;
* ``bench_e2e_streaming``: ``SalesforceStreamingSensor`` waiting for one event on ``/topic/BenchE2E``.

Every task notes when it starts executing and when it is done (``pre_execute``/``post_execute``,
which Airflow calls around ``execute`` and around ``execute_complete`` after a deferral) in
``timings.jsonl``: the operator's own time, apart from Airflow's task start-up.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from typing import Any

from airflow.sdk import DAG

from airflow_provider_salesforce_suite.operators.bulk import SalesforceBulkIngestOperator, SalesforceBulkQueryOperator
from airflow_provider_salesforce_suite.operators.rest import SalesforceUpsertRecordsOperator
from airflow_provider_salesforce_suite.sensors.streaming import SalesforceStreamingSensor

DATA = os.environ.get("SF_BENCH_E2E_DIR", "/tmp/sf-bench-e2e")
POLL = 1.0  # the triggerer's polls (doubling from 0.5 s up to this)
SOQL = "SELECT Id, Name, AccountNumber, NumberOfEmployees, Industry, Phone, Description FROM Account"


def _noting(phase: str) -> Any:
    def note(context: Any, *_: Any) -> None:
        with open(f"{DATA}/timings.jsonl", "a") as out:
            out.write(json.dumps({"dag_id": context["dag"].dag_id, "run_id": context["run_id"], "phase": phase,
                                  "at": time.time()}) + "\n")

    return note


ARGS = {"dag_id": None, "schedule": None, "start_date": datetime(2026, 1, 1), "catchup": False, "tags": ["bench"],
        "default_args": {"pre_execute": _noting("pre"), "post_execute": _noting("post")}}


def _dag(dag_id: str) -> DAG:
    return DAG(**{**ARGS, "dag_id": dag_id})


with _dag("bench_e2e_bulk_ingest"):
    SalesforceBulkIngestOperator(task_id="ingest", sobject="Account", source=f"{DATA}/accounts.csv",
                                 results_dir=f"{DATA}/ingest-results", deferrable=True, poll_interval=POLL)

with _dag("bench_e2e_bulk_extract"):
    SalesforceBulkQueryOperator(task_id="extract", soql=SOQL, output_uri=f"{DATA}/extract.csv", deferrable=True,
                                poll_interval=POLL)

with _dag("bench_e2e_rest_upsert"):
    SalesforceUpsertRecordsOperator(task_id="upsert", sobject="Account", external_id_field="Id",
                                    source=f"{DATA}/upsert.csv", concurrency=4)

with _dag("bench_e2e_streaming"):
    SalesforceStreamingSensor(task_id="wait", channel="/topic/BenchE2E", event_count=1, timeout=300)
