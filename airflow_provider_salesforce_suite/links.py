"""Extra links: buttons on a task instance in the Airflow UI that open what the task made in
Salesforce (the Bulk job, the record, the CRM Analytics dataset).

Each link is built by the task at run time from the org's instance URL and pushed to XCom under
the link's ``xcom_key``; Airflow 3's API server reads it from there (it never runs provider code
nor calls Salesforce to draw the button). Building a link never fails a task.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

log = logging.getLogger(__name__)


def bulk_job_url(instance_url: str, job_id: str) -> str:
    """Setup's Bulk Data Load Job page of one job (Bulk 1.0 and 2.0 jobs alike).

    :param instance_url: the org's instance URL.
    :param job_id: the job id (``750...``).
    """
    return f"{instance_url.rstrip('/')}/lightning/setup/AsyncApiJobStatus/page?address={quote('/' + job_id, safe='')}"


def record_url(instance_url: str, sobject: str, record_id: str) -> str:
    """A record's Lightning page.

    :param instance_url: the org's instance URL.
    :param sobject: the record's object.
    :param record_id: the record id.
    """
    return f"{instance_url.rstrip('/')}/lightning/r/{sobject}/{record_id}/view"


def analytics_dataset_url(instance_url: str, dataset_id: str) -> str:
    """A CRM Analytics dataset in Analytics Studio.

    :param instance_url: the org's instance URL.
    :param dataset_id: the dataset id (``0Fb...``).
    """
    return f"{instance_url.rstrip('/')}/analytics/dataset/{dataset_id}"


class _SalesforceLink(BaseOperatorLink):
    """A link whose URL the task pushed to XCom (see :meth:`persist`)."""

    name: ClassVar[str] = "Salesforce"  # type: ignore[misc]

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task stored, or ``""`` (no button) when it stored none."""
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""

    @classmethod
    def persist(cls, context: Context, url: Any) -> None:
        """Push ``url()`` (a callable: it may call Salesforce) or ``url`` for this task instance;
        a failure is logged, never raised.

        :param context: the task context.
        :param url: the URL, or a callable returning it (or None: no link).
        """
        try:
            value = url() if callable(url) else url
            ti = context.get("ti")
            if value and ti is not None:
                ti.xcom_push(key=cls().xcom_key, value=value)
        except Exception as exc:  # a link is a convenience: the task's outcome does not depend on it
            log.warning("Could not store the %r link: %s", cls.name, exc)


class SalesforceBulkJobLink(_SalesforceLink):
    """The (first) Bulk job of the task on Setup's Bulk Data Load Jobs page."""

    name = "Salesforce Bulk job"


class SalesforceRecordLink(_SalesforceLink):
    """The record the task created or updated (the first one when it saved several)."""

    name = "Salesforce record"


class SalesforceAnalyticsDatasetLink(_SalesforceLink):
    """The CRM Analytics dataset the task loaded."""

    name = "CRM Analytics dataset"


LINK_CLASSES = (SalesforceBulkJobLink, SalesforceRecordLink, SalesforceAnalyticsDatasetLink)
