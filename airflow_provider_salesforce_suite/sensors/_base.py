"""What every Salesforce job sensor shares: the job id, the connection, its hook and deferral default."""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar, Sequence

from airflow.sdk import BaseSensorOperator

from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook
from airflow_provider_salesforce_suite.operators._defer import default_deferrable


class SalesforceJobSensorBase(BaseSensorOperator):
    """A sensor on one Salesforce job, reached through ``hook_class`` on ``salesforce_conn_id``.

    :param job_id: the job (templated).
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``).
    :param api_version: overrides the connection's API version.
    :param deferrable: wait on the triggerer; default ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("job_id", "salesforce_conn_id")
    #: the hook class the sensor polls with (set by each API's sensor).
    hook_class: ClassVar[type[SalesforceBaseHook]] = SalesforceBaseHook

    def __init__(self, *, job_id: str, salesforce_conn_id: str = SalesforceBaseHook.default_conn_name,
                 api_version: str | None = None, deferrable: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.salesforce_conn_id = salesforce_conn_id
        self.api_version = api_version
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    @cached_property
    def hook(self) -> Any:
        """A ``hook_class`` hook on ``salesforce_conn_id``."""
        return self.hook_class(salesforce_conn_id=self.salesforce_conn_id, api_version=self.api_version)
