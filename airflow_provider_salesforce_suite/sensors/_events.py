"""What the event sensors (CometD's and Pub/Sub's) share: the deferral's grace and how a finished
wait becomes the task's result."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Extra seconds the deferral may last beyond the trigger's own timeout, so the trigger's
#: "timeout" event (with its message) arrives before Airflow's deferral timeout.
DEFERRAL_GRACE_SECONDS = 60.0


def finish_event_wait(context: Mapping[str, Any], event: Mapping[str, Any] | None, *, source: str, soft_fail: bool,
                      error: Callable[[str], Exception], trigger: str) -> list[dict[str, Any]]:
    """The events of a successful wait; raise for the others.

    Pushes ``last_replay_id`` to XCom (resume from it next time), whatever the outcome.

    :param context: the task context.
    :param event: the trigger's payload ``{"status", "events", "last_replay_id", "message"}``.
    :param source: the channel or topic, for messages.
    :param soft_fail: skip instead of failing on timeout.
    :param error: builds the API's error from a message.
    :param trigger: what fired the event, for the unexpected-payload message.
    :raises AirflowSensorTimeout: the wait timed out (``AirflowSkipException`` with ``soft_fail``).
    """
    if not isinstance(event, Mapping) or event.get("status") not in ("success", "timeout", "error") \
            or not isinstance(event.get("events"), list):
        raise error(f"Unexpected event from the {trigger} trigger: {event!r}")
    ti = context.get("ti")
    if ti is not None and event.get("last_replay_id") is not None:
        ti.xcom_push(key="last_replay_id", value=event["last_replay_id"])
    if event["status"] == "error":
        raise error(f"Waiting for events on {source} failed: {event.get('message')}")
    if event["status"] == "timeout":
        message = f"Timed out waiting for events on {source}: {event.get('message')}"
        if soft_fail:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(message)
        from airflow.sdk.exceptions import AirflowSensorTimeout

        raise AirflowSensorTimeout(message)
    return list(event["events"])
