"""A DAG run for every new Opportunity, started by Salesforce itself (no polling DAG).

Two DAGs:

* ``example_salesforce_new_opportunity_setup`` (manual, run once per org): creates or updates the
  ``NewOpportunities`` PushTopic the watcher listens to (idempotent).
* ``example_salesforce_new_opportunity``: scheduled on an asset whose watcher,
  :class:`~airflow_provider_salesforce_suite.triggers.streaming.SalesforceEventTrigger`, turns each
  PushTopic event into an asset event. The task reads the events from
  ``triggering_asset_events``; several events can land in one run when they arrive faster than the
  scheduler loop, and after a triggerer restart an event can arrive twice, so the task keys its work
  on the ``replay_id`` every payload carries.

Nothing here talks to Salesforce at parse time. Setup without Airflow: run the setup DAG, or
``SalesforceStreamingHook().ensure_push_topic("NewOpportunities", QUERY, operations=["create"])``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider_salesforce_suite.operators.streaming import SalesforceEnsurePushTopicOperator
from airflow_provider_salesforce_suite.triggers.streaming import SalesforceEventTrigger

PUSH_TOPIC = "NewOpportunities"
QUERY = "SELECT Id, Name, StageName, Amount, CloseDate, AccountId FROM Opportunity"
CHANNEL = f"/topic/{PUSH_TOPIC}"

new_opportunities = Asset(
    f"salesforce://default{CHANNEL}",
    watchers=[AssetWatcher(name="salesforce_new_opportunities",
                           trigger=SalesforceEventTrigger(channel=CHANNEL, salesforce_conn_id="salesforce_suite_default"))],
)


@dag(dag_id="example_salesforce_new_opportunity_setup", schedule=None, start_date=datetime(2026, 1, 1),
     catchup=False, tags=["salesforce", "example", "streaming"])
def example_salesforce_new_opportunity_setup():
    SalesforceEnsurePushTopicOperator(
        task_id="ensure_push_topic", name=PUSH_TOPIC, query=QUERY, operations=["create"],
        salesforce_conn_id="salesforce_suite_default",
    )


@dag(dag_id="example_salesforce_new_opportunity", schedule=[new_opportunities], start_date=datetime(2026, 1, 1),
     catchup=False, tags=["salesforce", "example", "streaming"])
def example_salesforce_new_opportunity():
    @task
    def handle_new_opportunities(triggering_asset_events=None) -> list[dict]:
        """One line per event; ``replay_id`` lets a real pipeline skip an event it already handled."""
        handled = []
        for event in triggering_asset_events[new_opportunities]:
            message = event.extra["payload"]
            record = message["payload"]["sobject"]
            handled.append({"replay_id": message["replay_id"], "id": record["Id"], "name": record.get("Name"),
                            "type": message["payload"]["event"]["type"]})
            print(f"new opportunity {record['Id']} {record.get('Name')!r} (replay id {message['replay_id']})")
        return handled

    handle_new_opportunities()


example_salesforce_new_opportunity_setup()
example_salesforce_new_opportunity()
