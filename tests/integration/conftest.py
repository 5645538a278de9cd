"""Integration tests start real processes (the emulator, Airflow's components): ``-m integration``
selects them, ``-m "not integration"`` leaves them out; ``make test`` runs them.

The ``celery_deployment`` fixture is a production-shaped Airflow: PostgreSQL, Redis, CeleryExecutor,
API server, scheduler, DAG processor, two triggerers and two Celery workers, all real processes.
A module using it names what to deploy::

    DEPLOY_DAGS = [Path(...)]          # DAG files copied to the DAG folder
    DAG_ID = "..."                     # the event-driven DAG, unpaused once parsed
    ASSET_URI = "salesforce://..."     # the asset its watcher feeds
    PUSH_TOPIC = ("Name", "SELECT ...")  # created in the emulator before the DAG is unpaused
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.integration.airflow_procs import ProcessSet, Stack, start_celery_deployment


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "integration: starts real Airflow and emulator processes (slower)")
    config.addinivalue_line("markers", "integration_full: a scenario another test already covers in a more "
                            "production-like deployment; run by `make integration-full` (SF_INTEGRATION_FULL=1)")


def pytest_collection_modifyitems(config, items) -> None:
    # Keeps `make test` under its time budget: these cost minutes and add little to what runs.
    if os.environ.get("SF_INTEGRATION_FULL") == "1":
        return
    skip = pytest.mark.skip(reason="covered by a deployment test; `make integration-full` runs it")
    for item in items:
        if item.get_closest_marker("integration_full"):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def celery_deployment(request, tmp_path_factory) -> Iterator[Stack]:
    module = request.module
    base = tmp_path_factory.mktemp("airflow-celery")
    home, dags = base / "home", base / "dags"
    home.mkdir()
    dags.mkdir()
    for path in module.DEPLOY_DAGS:
        shutil.copy(path, dags / path.name)
    procs = ProcessSet(home, dict(os.environ))
    stack = None
    try:
        stack = start_celery_deployment(procs, home, dags, {"salesforce_suite_default": "{emulator}"},
                                        asset_uri=module.ASSET_URI)
        # The watcher needs its PushTopic (the setup a user does once per org).
        os.environ["AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT"] = stack.emulator["connection"]
        from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

        name, query = module.PUSH_TOPIC
        SalesforceStreamingHook("salesforce_suite_default").ensure_push_topic(name, query, operations=["create"])
        stack.activate_watcher(module.DAG_ID, "SalesforceEventTrigger", timeout=180)
        yield stack
    except BaseException:
        print(stack.diagnostics() if stack is not None else procs.log_tail("emulator"))
        raise
    finally:
        os.environ.pop("AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT", None)
        procs.stop_all()
