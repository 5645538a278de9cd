"""Pub/Sub API sensor: wait for events on a topic without holding a worker slot.

:class:`SalesforcePubSubSensor` only ever waits in the triggerer: ``execute`` defers at once to
:class:`~airflow_provider_salesforce_suite.triggers.pubsub.SalesforcePubSubTrigger`, and
``execute_complete`` returns the events (XCom) or fails clearly on timeout (skips with ``soft_fail``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from airflow.sdk import BaseSensorOperator

from airflow_provider_salesforce_suite.sensors._events import DEFERRAL_GRACE_SECONDS, finish_event_wait
from airflow_provider_salesforce_suite.triggers._wait import validate_wait
from airflow_provider_salesforce_suite.triggers.pubsub import validate_gap_policy

if TYPE_CHECKING:
    from airflow.sdk import Context


class SalesforcePubSubSensor(BaseSensorOperator):
    """Wait until ``event_count`` events (matching ``filter``, if given) arrive on a Pub/Sub topic.

    The XCom value is the list of events ``[{"topic", "replay_id", "event_id", "schema_id",
    "payload"}]`` (replay ids as base64 text, payloads decoded); the replay id of the last event
    seen is pushed under the key ``last_replay_id`` (feed it to the next run's ``replay_id`` to
    resume without a gap).

    :param topic: ``/data/ChangeEvents``, ``/data/<Object>ChangeEvent``, ``/event/<Name>__e`` or a
        custom channel (templated).
    :param replay_preset: ``LATEST``, ``EARLIEST`` or ``CUSTOM``; default ``CUSTOM`` when
        ``replay_id`` is given, else ``LATEST`` (templated).
    :param replay_id: base64 replay id to resume after (templated; an empty rendering means none).
    :param event_count: how many matching events to wait for.
    :param filter: declarative filter over the decoded payload, e.g.
        ``{"ChangeEventHeader.changeType": "UPDATE"}`` (templated).
    :param on_replay_gap: ``"fail"`` or ``"earliest"`` when ``replay_id`` is no longer retained.
    :param batch_size: events requested at a time (1 to 100).
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``; templated).
    :param api_version: overrides the connection's API version.
    :param pubsub_endpoint: overrides the connection's ``pubsub_endpoint`` extra.
    Other parameters: ``timeout`` (seconds to wait in all), ``soft_fail`` (skip instead of failing on
    timeout) and the rest of ``BaseSensorOperator``'s.
    """

    template_fields: Sequence[str] = ("topic", "replay_preset", "replay_id", "filter", "salesforce_conn_id")

    def __init__(self, *, topic: str, replay_preset: str | None = None, replay_id: str | None = None,
                 event_count: int = 1, filter: Mapping[str, Any] | None = None,  # noqa: A002 - public name
                 on_replay_gap: str = "fail", batch_size: int = 100,
                 salesforce_conn_id: str = "salesforce_suite_default", api_version: str | None = None,
                 pubsub_endpoint: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        validate_wait(event_count, None)
        validate_gap_policy(on_replay_gap)
        self.topic = topic
        self.replay_preset = replay_preset
        self.replay_id = replay_id
        self.event_count = event_count
        self.filter = filter
        self.on_replay_gap = on_replay_gap
        self.batch_size = batch_size
        self.salesforce_conn_id = salesforce_conn_id
        self.api_version = api_version
        self.pubsub_endpoint = pubsub_endpoint

    def poke(self, context: Context) -> bool:
        raise NotImplementedError("SalesforcePubSubSensor waits only in the triggerer (execute defers)")

    def execute(self, context: Context) -> None:
        from airflow_provider_salesforce_suite.triggers.pubsub import SalesforcePubSubTrigger

        timeout = float(self.timeout) if self.timeout else None
        trigger = SalesforcePubSubTrigger(
            topic=self.topic, salesforce_conn_id=self.salesforce_conn_id,
            replay_preset=self.replay_preset or None, replay_id=self.replay_id or None,
            event_count=self.event_count, filter=self.filter, timeout=timeout, on_replay_gap=self.on_replay_gap,
            batch_size=self.batch_size, api_version=self.api_version, pubsub_endpoint=self.pubsub_endpoint,
        )
        self.defer(trigger=trigger, method_name="execute_complete",
                   timeout=dt.timedelta(seconds=timeout + DEFERRAL_GRACE_SECONDS) if timeout else None)

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Resume after the trigger fired: the events on success; timeout fails (or skips with ``soft_fail``).

        :param context: the task context.
        :param event: the trigger's payload.
        :raises SalesforcePubSubError: an unexpected payload, or the subscription failed.
        """
        from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubError

        return finish_event_wait(context, event, source=self.topic, soft_fail=self.soft_fail, trigger="Pub/Sub",
                                 error=SalesforcePubSubError)
