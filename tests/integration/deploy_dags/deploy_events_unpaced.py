"""An UNPACED event-driven DAG (tests/integration/test_deployment.py measures Airflow 3.3's asset
queue bug with it): one asset event per Salesforce change on ``/topic/DeployContacts``."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger

contacts = Asset("salesforce://deploy/topic/DeployContacts", watchers=[AssetWatcher(
    name="deploy_contacts", trigger=SalesforceEventTrigger(channel="/topic/DeployContacts",
                                                           salesforce_conn_id="salesforce_suite_default"))])


@dag(dag_id="deploy_events_unpaced", schedule=[contacts], start_date=datetime(2026, 1, 1), catchup=False,
     tags=["test"])
def deploy_events_unpaced():
    @task
    def noop() -> None:
        """Nothing: the test reads which asset events each run consumed from the database."""

    noop()


deploy_events_unpaced()
