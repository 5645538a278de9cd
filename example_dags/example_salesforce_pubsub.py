"""Salesforce's Pub/Sub API (gRPC): a DAG run for every Account change, and publishing platform events.

Two DAGs:

* ``example_salesforce_pubsub``: scheduled on an asset whose watcher,
  :class:`~airflow_provider_salesforce_suite.triggers.pubsub.SalesforcePubSubEventTrigger`, subscribes
  to the ``/data/AccountChangeEvent`` Change Data Capture topic and turns each change into an asset
  event. The task reads the decoded change events from ``triggering_asset_events``: the
  ``ChangeEventHeader`` (change type, record ids, changed fields as names) and the changed values.
  Several changes can land in one run when they arrive faster than the scheduler loop, and after a
  triggerer restart a change can arrive twice, so the task keys its work on the ``replay_id``
  (base64) every payload carries. Select Account for CDC first (Setup -> Change Data Capture; in
  the emulator: ``"cdc_entities": ["Account"]`` in its config file or
  ``POST /__emulator__/streaming/config``).
* ``example_salesforce_pubsub_publish`` (manual): publishes one ``Order_Shipped__e`` platform event
  per order in its ``orders`` param with
  :class:`~airflow_provider_salesforce_suite.operators.pubsub.SalesforcePublishEventsOperator`;
  the results file holds each event's replay id (or Salesforce's error). Define the platform event
  first (Setup -> Platform Events: ``Order_Shipped__e`` with a text field ``OrderNumber__c``; in the
  emulator: a schema file, see docs/emulator.md).

Nothing here talks to Salesforce at parse time.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, AssetWatcher, Param, dag, task

from airflow_provider_salesforce_suite.operators.pubsub import SalesforcePublishEventsOperator
from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubEventTrigger

TOPIC = "/data/AccountChangeEvent"
PLATFORM_EVENT_TOPIC = "/event/Order_Shipped__e"

account_changes = Asset(
    f"salesforce://default{TOPIC}",
    watchers=[AssetWatcher(name="salesforce_account_changes",
                           trigger=SalesforcePubSubEventTrigger(topic=TOPIC, salesforce_conn_id="salesforce_suite_default"))],
)


@dag(dag_id="example_salesforce_pubsub", schedule=[account_changes], start_date=datetime(2026, 1, 1),
     catchup=False, tags=["salesforce", "example", "pubsub"])
def example_salesforce_pubsub():
    @task
    def handle_account_changes(triggering_asset_events=None) -> list[dict]:
        """One line per change; ``replay_id`` lets a real pipeline skip a change it already handled."""
        handled = []
        for event in triggering_asset_events[account_changes]:
            message = event.extra["payload"]  # topic, replay_id (base64), event_id, schema_id, payload
            change = message["payload"]
            header = change["ChangeEventHeader"]
            handled.append({"replay_id": message["replay_id"], "record_ids": header["recordIds"],
                            "change_type": header["changeType"], "changed_fields": header["changedFields"],
                            "name": change.get("Name")})
            print(f"{header['changeType']} {header['recordIds']} fields {header['changedFields']} "
                  f"(replay id {message['replay_id']})")
        return handled

    handle_account_changes()


@dag(dag_id="example_salesforce_pubsub_publish", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
     tags=["salesforce", "example", "pubsub"],
     params={"orders": Param(["ON-1001", "ON-1002"], type="array", items={"type": "string"}),
             "output_dir": Param("file:///tmp/salesforce_pubsub", type="string")})
def example_salesforce_pubsub_publish():
    @task
    def order_events(params=None) -> list[dict]:
        """One platform event per order (field names as defined on ``Order_Shipped__e``)."""
        return [{"OrderNumber__c": number} for number in params["orders"]]

    SalesforcePublishEventsOperator(
        task_id="publish_order_shipped",
        topic=PLATFORM_EVENT_TOPIC,
        events=order_events(),
        results_uri="{{ params.output_dir }}/order_shipped_results.jsonl",
        salesforce_conn_id="salesforce_suite_default",
    )


example_salesforce_pubsub()
example_salesforce_pubsub_publish()
