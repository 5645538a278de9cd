"""SalesforceStreamingSensor: defers at once, the trigger runs against the emulator, execute_complete
returns the events (timeout fails, or skips with soft_fail)."""

from __future__ import annotations

import asyncio

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingError
from airflow_provider_salesforce_suite.sensors.streaming import SalesforceStreamingSensor
from airflow_provider_salesforce_suite.triggers.streaming import SalesforceStreamingTrigger
from tests.hooks.streaming_support import CHANNEL, run, streaming  # noqa: F401


class _TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key: str, value) -> None:
        self.pushed[key] = value


@pytest.fixture
def context() -> dict:
    return {"ti": _TaskInstance(), "params": {}}


def _deferred(sensor, context) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    return deferred.value


async def _run_trigger(trigger):
    events = [event async for event in trigger.run()]
    assert len(events) == 1
    return events[0].payload


def test_defers_then_returns_the_events(streaming, context) -> None:
    streaming.accounts("One", "Two")
    sensor = SalesforceStreamingSensor(task_id="wait", channel=CHANNEL, replay_id="-2", event_count=2,
                                       salesforce_conn_id=streaming.conn_id, timeout=30)
    deferred = _deferred(sensor, context)
    assert isinstance(deferred.trigger, SalesforceStreamingTrigger)
    assert deferred.method_name == "execute_complete"
    assert deferred.trigger.serialize()[1]["replay_id"] == -2
    payload = run(_run_trigger(deferred.trigger))
    events = getattr(sensor, deferred.method_name)(context, payload)
    assert [e["payload"]["sobject"]["Name"] for e in events] == ["One", "Two"]
    assert context["ti"].pushed["last_replay_id"] == events[-1]["replay_id"]


def test_filter_reaches_the_trigger(streaming, context) -> None:
    sensor = SalesforceStreamingSensor(task_id="wait", channel=CHANNEL, filter={"sobject.Name": "Won"},
                                       salesforce_conn_id=streaming.conn_id, timeout=30)
    trigger = _deferred(sensor, context).trigger

    async def main():
        task = asyncio.ensure_future(_run_trigger(trigger))
        await streaming.until(lambda s: s["subscriptions"] >= 1)
        await streaming.acreate("Lost", "Won")
        return await task

    events = sensor.execute_complete(context, run(main()))
    assert [e["payload"]["sobject"]["Name"] for e in events] == ["Won"]


def test_timeout_fails_clearly(streaming, context) -> None:
    sensor = SalesforceStreamingSensor(task_id="wait", channel=CHANNEL, salesforce_conn_id=streaming.conn_id, timeout=1)
    payload = run(_run_trigger(_deferred(sensor, context).trigger))
    with pytest.raises(AirflowSensorTimeout, match=f"Timed out waiting for events on {CHANNEL}"):
        sensor.execute_complete(context, payload)


def test_timeout_skips_with_soft_fail(context) -> None:
    sensor = SalesforceStreamingSensor(task_id="wait", channel=CHANNEL, timeout=1, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.execute_complete(context, {"status": "timeout", "events": [], "last_replay_id": -1, "message": "m"})


def test_error_event_raises(context) -> None:
    sensor = SalesforceStreamingSensor(task_id="wait", channel=CHANNEL)
    with pytest.raises(SalesforceStreamingError, match="does not exist"):
        sensor.execute_complete(context, {"status": "error", "events": [], "last_replay_id": -1,
                                          "message": "400::The channel you requested to subscribe to does not exist"})


@pytest.mark.parametrize("event", [None, {}, {"status": "done", "events": []}, {"status": "success"},
                                   {"status": "success", "events": "x"}])
def test_unexpected_event_is_rejected(context, event) -> None:
    sensor = SalesforceStreamingSensor(task_id="wait", channel=CHANNEL)
    with pytest.raises(SalesforceStreamingError, match="Unexpected event"):
        sensor.execute_complete(context, event)


@pytest.mark.parametrize("kwargs, message", [
    ({"event_count": 0}, "event_count"),
    ({"on_replay_gap": "skip"}, "on_replay_gap"),
])
def test_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        SalesforceStreamingSensor(task_id="wait", channel=CHANNEL, **kwargs)


def test_bad_rendered_replay_id_fails_at_execute(context) -> None:
    sensor = SalesforceStreamingSensor(task_id="wait", channel=CHANNEL, replay_id="latest")
    with pytest.raises(ValueError, match="replay_id"):
        sensor.execute(context)


def test_poke_is_never_used(context) -> None:
    with pytest.raises(NotImplementedError, match="triggerer"):
        SalesforceStreamingSensor(task_id="wait", channel=CHANNEL).poke(context)
