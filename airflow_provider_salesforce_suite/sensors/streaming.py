"""Streaming API sensor: wait for events on a channel without holding a worker slot.

:class:`SalesforceStreamingSensor` only ever waits in the triggerer: ``execute`` defers at once to
:class:`~airflow_provider_salesforce_suite.triggers.streaming.SalesforceStreamingTrigger`, and
``execute_complete`` returns the events (XCom) or fails clearly on timeout (skips with ``soft_fail``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from airflow.sdk import BaseSensorOperator

from airflow_provider_salesforce_suite.hooks._streaming.cometd import SalesforceStreamingError, validate_gap_policy
from airflow_provider_salesforce_suite.sensors._events import DEFERRAL_GRACE_SECONDS, finish_event_wait

if TYPE_CHECKING:
    from airflow.sdk import Context


class SalesforceStreamingSensor(BaseSensorOperator):
    """Wait until ``event_count`` events (matching ``filter``, if given) arrive on a Streaming API channel.

    The XCom value is the list of events ``[{"channel", "replay_id", "payload", "created_date"}]``;
    the replay id of the last event seen is pushed under the key ``last_replay_id`` (feed it to the
    next run's ``replay_id`` to resume without a gap).

    :param channel: ``/topic/<PushTopic>``, ``/data/<ChangeEvent>``, ``/event/<Name>__e`` or
        ``/u/<Name>`` (templated).
    :param replay_id: -1 (new events), -2 (every retained event) or a stored replay id (templated;
        a rendered string of digits is accepted).
    :param event_count: how many matching events to wait for.
    :param filter: declarative payload filter, e.g. ``{"sobject.StageName": "Closed Won"}`` (templated).
    :param on_replay_gap: ``"fail"`` or ``"earliest"`` when ``replay_id`` is no longer retained.
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``; templated).
    :param api_version: overrides the connection's API version.
    Other parameters: ``timeout`` (seconds to wait in all), ``soft_fail`` (skip instead of failing on
    timeout) and the rest of ``BaseSensorOperator``'s.
    """

    template_fields: Sequence[str] = ("channel", "replay_id", "filter", "salesforce_conn_id")

    def __init__(self, *, channel: str, replay_id: int | str = -1, event_count: int = 1,
                 filter: Mapping[str, Any] | None = None,  # noqa: A002 - public name
                 on_replay_gap: str = "fail", salesforce_conn_id: str = "salesforce_suite_default",
                 api_version: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(event_count, bool) or not isinstance(event_count, int) or event_count < 1:
            raise ValueError(f"event_count must be an int >= 1, got {event_count!r}")
        validate_gap_policy(on_replay_gap)
        self.channel = channel
        self.replay_id = replay_id
        self.event_count = event_count
        self.filter = filter
        self.on_replay_gap = on_replay_gap
        self.salesforce_conn_id = salesforce_conn_id
        self.api_version = api_version

    def poke(self, context: Context) -> bool:
        raise NotImplementedError("SalesforceStreamingSensor waits only in the triggerer (execute defers)")

    def _replay_id(self) -> int:
        value = self.replay_id
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        return value  # type: ignore[return-value]  # the trigger validates it

    def execute(self, context: Context) -> None:
        from airflow_provider_salesforce_suite.triggers.streaming import SalesforceStreamingTrigger

        timeout = float(self.timeout) if self.timeout else None
        trigger = SalesforceStreamingTrigger(
            channel=self.channel, salesforce_conn_id=self.salesforce_conn_id, replay_id=self._replay_id(),
            event_count=self.event_count, filter=self.filter, timeout=timeout,
            on_replay_gap=self.on_replay_gap, api_version=self.api_version,
        )
        self.defer(trigger=trigger, method_name="execute_complete",
                   timeout=dt.timedelta(seconds=timeout + DEFERRAL_GRACE_SECONDS) if timeout else None)

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Resume after the trigger fired: the events on success; timeout fails (or skips with ``soft_fail``).

        :param context: the task context.
        :param event: the trigger's payload.
        :raises SalesforceStreamingError: an unexpected payload, or the subscription failed.
        """
        return finish_event_wait(context, event, source=self.channel, soft_fail=self.soft_fail, trigger="streaming",
                                 error=lambda message: SalesforceStreamingError(message, channel=self.channel))
