"""CRM Analytics sensor: wait for a dataflow job, in ``poke``, ``reschedule`` or deferrable mode.

A job that ends ``Failure`` fails the sensor at once with Salesforce's message (no retries).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Mapping

from airflow.sdk import PokeReturnValue

from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook
from airflow_provider_salesforce_suite.sensors._base import SalesforceJobSensorBase

if TYPE_CHECKING:
    from airflow.sdk import Context


def finish(event: Mapping[str, Any] | None) -> dict[str, Any]:
    """The result of a :class:`SalesforceAnalyticsJobTrigger` event; failure fails the task at once.

    :param event: the trigger's payload.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsError

    if not isinstance(event, Mapping) or event.get("status") not in ("success", "failed", "timeout", "error"):
        raise SalesforceAnalyticsError(f"Unexpected event from the analytics trigger: {event!r}")
    if event["status"] == "failed":
        raise AirflowFailException(str(event.get("message")))
    if event["status"] in ("timeout", "error"):
        raise SalesforceAnalyticsError(str(event.get("message")))
    return dict(event["result"])


class SalesforceAnalyticsDataflowJobSensor(SalesforceJobSensorBase):
    """Wait for a dataflow (or recipe) job to reach ``Success`` or ``Warning``.

    The XCom value is ``{"id", "status", "message"}``.

    :param job_id: the ``03C`` dataflow job (templated).
    Other parameters: see :class:`~airflow_provider_salesforce_suite.sensors._base.SalesforceJobSensorBase`.
    """

    hook_class = SalesforceAnalyticsHook

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsError, raise_if_failed

        status = self.hook.dataflow_job_status(self.job_id)
        try:
            raise_if_failed("dataflow_job", status)
        except SalesforceAnalyticsError as exc:
            raise AirflowFailException(str(exc)) from None
        if not status.done:
            self.log.info("Dataflow job %s is %s", self.job_id, status.status)
        return PokeReturnValue(status.done, {"id": status.id, "status": status.status, "message": status.message})

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        from airflow_provider_salesforce_suite.triggers.analytics import SalesforceAnalyticsJobTrigger

        self.defer(trigger=SalesforceAnalyticsJobTrigger(
            kind="dataflow_job", object_id=self.job_id, salesforce_conn_id=self.salesforce_conn_id,
            poll_interval=self.poke_interval, timeout=self.timeout, api_version=self.api_version,
        ), method_name="execute_complete", timeout=dt.timedelta(seconds=self.timeout) if self.timeout else None)

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger fired.

        :param context: the task context.
        :param event: the trigger's payload.
        """
        return finish(event)
