"""Wait for a change in Salesforce, then act on it: a deferrable sensor on a Change Data Capture
channel. Select Account for CDC first (Setup -> Change Data Capture; none is selected by default;
in the emulator: ``"cdc_entities": ["Account"]`` in its config file, or
``POST /__emulator__/streaming/config {"cdc_entities": ["Account"]}``).

The sensor defers to the triggerer, where ``SalesforceStreamingTrigger`` subscribes to
``/data/AccountChangeEvent`` and fires once an Account becomes a ``Hot`` prospect. Pass
``replay_id`` (the previous run's ``last_replay_id`` XCom, or -2 for every retained event) to
resume without a gap; the default -1 waits for changes made after the subscription.

Nothing here talks to Salesforce at parse time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from airflow_provider_salesforce_suite.sensors.streaming import SalesforceStreamingSensor


@dag(
    dag_id="example_salesforce_streaming_sensor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["salesforce", "example", "streaming"],
    params={"replay_id": Param(-1, type="integer", minimum=-2), "timeout": Param(600, type="integer", minimum=1)},
)
def example_salesforce_streaming_sensor():
    wait = SalesforceStreamingSensor(
        task_id="wait_for_hot_account",
        channel="/data/AccountChangeEvent",
        replay_id="{{ params.replay_id }}",
        filter={"payload.Rating": "Hot"},
        timeout=timedelta(minutes=10),
        salesforce_conn_id="salesforce_suite_default",
    )

    @task
    def report(events: list[dict]) -> list[str]:
        """The ids of the Accounts that became Hot (from the CDC header)."""
        ids = [record_id for event in events for record_id in event["payload"]["payload"]["ChangeEventHeader"]["recordIds"]]
        print(f"hot accounts: {ids} (last replay id {events[-1]['replay_id']})")
        return ids

    report(wait.output)


example_salesforce_streaming_sensor()
