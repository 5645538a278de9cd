"""SalesforcePubSubSensor: defers at once to SalesforcePubSubTrigger; execute_complete returns the
events (timeout fails, or skips with soft_fail). The trigger itself runs against the emulator in
tests/triggers/test_pubsub_triggers_emulator.py."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from airflow_provider_salesforce_suite.sensors.pubsub import SalesforcePubSubSensor
from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubTrigger
from tests.sensors.test_streaming_sensor import context  # noqa: F401 - the task context fixture

TOPIC = "/data/AccountChangeEvent"


def test_defers_to_the_trigger_with_its_arguments(context) -> None:
    sensor = SalesforcePubSubSensor(task_id="wait", topic=TOPIC, replay_id="AAAAAAAAAAc=", event_count=2,
                                    filter={"ChangeEventHeader.changeType": "UPDATE"}, batch_size=10,
                                    salesforce_conn_id="sf", pubsub_endpoint="127.0.0.1:7443", timeout=30)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, SalesforcePubSubTrigger) and deferred.value.method_name == "execute_complete"
    kwargs = trigger.serialize()[1]
    assert (kwargs["replay_preset"], kwargs["replay_id"], kwargs["event_count"], kwargs["timeout"]) == \
        ("CUSTOM", "AAAAAAAAAAc=", 2, 30.0)
    assert kwargs["filter"] == {"ChangeEventHeader.changeType": "UPDATE"}
    assert (kwargs["batch_size"], kwargs["pubsub_endpoint"], kwargs["salesforce_conn_id"]) == (10, "127.0.0.1:7443", "sf")
    assert deferred.value.timeout.total_seconds() == 90  # the trigger's timeout event arrives first


def test_an_empty_rendered_replay_id_means_latest(context) -> None:
    sensor = SalesforcePubSubSensor(task_id="wait", topic=TOPIC, replay_id="", replay_preset="")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    assert deferred.value.trigger.serialize()[1]["replay_preset"] == "LATEST"


def test_bad_rendered_arguments_fail_at_execute(context) -> None:
    with pytest.raises(ValueError, match="CometD-only"):
        SalesforcePubSubSensor(task_id="wait", topic="/topic/Deals").execute(context)
    with pytest.raises(ValueError, match="-1"):  # decode_replay_id names the bad value
        SalesforcePubSubSensor(task_id="wait", topic=TOPIC, replay_id="-1").execute(context)


def test_success_returns_the_events_and_pushes_the_last_replay_id(context) -> None:
    events = [{"topic": TOPIC, "replay_id": "AAAAAAAAAAE=", "event_id": "e1", "schema_id": "s", "payload": {}}]
    sensor = SalesforcePubSubSensor(task_id="wait", topic=TOPIC)
    got = sensor.execute_complete(context, {"status": "success", "events": events, "last_replay_id": "AAAAAAAAAAI=",
                                            "message": None})
    assert got == events and context["ti"].pushed["last_replay_id"] == "AAAAAAAAAAI="


def test_timeout_fails_clearly_or_skips_with_soft_fail(context) -> None:
    payload = {"status": "timeout", "events": [], "last_replay_id": None, "message": "0 of 1 event(s)"}
    with pytest.raises(AirflowSensorTimeout, match=f"Timed out waiting for events on {TOPIC}: 0 of 1"):
        SalesforcePubSubSensor(task_id="wait", topic=TOPIC).execute_complete(context, payload)
    with pytest.raises(AirflowSkipException):
        SalesforcePubSubSensor(task_id="wait", topic=TOPIC, soft_fail=True).execute_complete(context, payload)


def test_error_event_raises_with_the_message(context) -> None:
    from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubError

    message = "SalesforcePubSubTopicError: NOT_FOUND (sfdc.platform.eventbus.grpc.service.topic.not.found)"
    with pytest.raises(SalesforcePubSubError, match="topic.not.found"):
        SalesforcePubSubSensor(task_id="wait", topic=TOPIC).execute_complete(
            context, {"status": "error", "events": [], "last_replay_id": None, "message": message})


@pytest.mark.parametrize("event", [None, {}, {"status": "done", "events": []}, {"status": "success"},
                                   {"status": "success", "events": "x"}])
def test_unexpected_event_is_rejected(context, event) -> None:
    from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubError

    with pytest.raises(SalesforcePubSubError, match="Unexpected event"):
        SalesforcePubSubSensor(task_id="wait", topic=TOPIC).execute_complete(context, event)


@pytest.mark.parametrize("kwargs, message", [({"event_count": 0}, "event_count"), ({"on_replay_gap": "skip"}, "on_replay_gap")])
def test_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        SalesforcePubSubSensor(task_id="wait", topic=TOPIC, **kwargs)


def test_poke_is_never_used(context) -> None:
    with pytest.raises(NotImplementedError, match="triggerer"):
        SalesforcePubSubSensor(task_id="wait", topic=TOPIC).poke(context)


def test_waits_in_the_triggerer_for_matching_changes_end_to_end(sf_conn, emulator_admin, context) -> None:
    import asyncio

    from tests.triggers.test_event_trigger import create_accounts, select_account_for_cdc

    select_account_for_cdc(emulator_admin)
    conn_id = sf_conn("sf_pubsub_sensor")
    ids = asyncio.run(create_accounts(conn_id, ["Cold", "Hot", "Hot"]))
    sensor = SalesforcePubSubSensor(task_id="wait", topic=TOPIC, replay_preset="EARLIEST", event_count=2,
                                    filter={"Name": "Hot"}, salesforce_conn_id=conn_id, timeout=30)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)

    async def fire() -> dict:
        return [event async for event in deferred.value.trigger.run()][0].payload

    events = sensor.execute_complete(context, asyncio.run(fire()))
    assert [e["payload"]["ChangeEventHeader"]["recordIds"] for e in events] == [[ids[1]], [ids[2]]]
    assert context["ti"].pushed["last_replay_id"] == events[-1]["replay_id"]
