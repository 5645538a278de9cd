"""Pardot sensors: wait for an Import or Export job to be Complete.

Both work in ``poke``, ``reschedule`` and deferrable modes (deferrable: one check, then the wait
moves to :class:`~airflow_provider_salesforce_suite.triggers.pardot.PardotJobTrigger`). A job
that ends ``Failed`` fails the sensor at once. The XCom value is the job summary
(``{"job_id", "state", "createdCount", "updatedCount", "errorCount", ...}`` or ``resultRefs``).
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_salesforce_suite.hooks.pardot import PardotHook
from airflow_provider_salesforce_suite.operators._defer import default_deferrable

if TYPE_CHECKING:
    from airflow.sdk import Context


class _PardotJobSensor(BaseSensorOperator):
    """Shared by the Import and Export sensors.

    :param job_id: the job (templated).
    :param pardot_conn_id: Airflow connection id (type ``salesforce_pardot``).
    :param deferrable: wait on the triggerer; default ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("job_id", "pardot_conn_id")
    _kind = "import"

    def __init__(self, *, job_id: int | str, pardot_conn_id: str = PardotHook.default_conn_name,
                 deferrable: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.pardot_conn_id = pardot_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    @cached_property
    def hook(self) -> PardotHook:
        """The Pardot hook on ``pardot_conn_id``."""
        return PardotHook(self.pardot_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_provider_salesforce_suite.triggers.pardot import poll_job

        status = poll_job(self.hook, self._kind, int(self.job_id))
        if status.failed:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"Pardot {self._kind} {self.job_id} ended {status.state}")
        if not status.done:
            self.log.info("Pardot %s %s is %s", self._kind, self.job_id, status.state)
        return PokeReturnValue(status.done, status.summary())

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        from airflow_provider_salesforce_suite.triggers.pardot import PardotJobTrigger

        self.defer(trigger=PardotJobTrigger(kind=self._kind, job_id=int(self.job_id), pardot_conn_id=self.pardot_conn_id,
                                            poll_interval=self.poke_interval, timeout=self.timeout),
                   method_name="execute_complete",
                   timeout=dt.timedelta(seconds=self.timeout) if self.timeout else None)

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: the job summary (XCom), or fail.

        :param context: the task context.
        :param event: the trigger's payload.
        """
        from airflow_provider_salesforce_suite.triggers.pardot import event_result

        return event_result(event, self._kind, int(self.job_id))


class PardotImportSensor(_PardotJobSensor):
    """Wait for a Pardot import (``/api/v5/imports/{id}``) to be Complete.

    :param job_id: the import id (e.g. from :class:`~airflow_provider_salesforce_suite.operators.pardot.PardotImportOperator`).
    Other parameters: ``pardot_conn_id``, ``deferrable`` and the ``BaseSensorOperator`` ones.
    """

    _kind = "import"


class PardotExportSensor(_PardotJobSensor):
    """Wait for a Pardot export (``/api/v5/exports/{id}``) to be Complete.

    :param job_id: the export id.
    Other parameters: ``pardot_conn_id``, ``deferrable`` and the ``BaseSensorOperator`` ones.
    """

    _kind = "export"
