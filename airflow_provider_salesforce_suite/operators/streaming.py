"""PushTopic operators: create, ensure (idempotent) and delete the topics behind ``/topic/<Name>``.

Each builds its :class:`~airflow_provider_salesforce_suite.hooks.streaming.SalesforceStreamingHook`
lazily in ``execute``; ``__init__`` only checks arguments.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Sequence

from airflow.sdk import BaseOperator

from airflow_provider_salesforce_suite.hooks._streaming.push_topics import OPERATIONS, topic_fields
from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook

if TYPE_CHECKING:
    from airflow.sdk import Context


class _PushTopicOperator(BaseOperator):
    """Connection and hook of the PushTopic operators.

    :param name: the PushTopic name (templated; at most 25 characters).
    :param salesforce_conn_id: Airflow connection id (type ``salesforce_suite``; templated).
    :param api_version: overrides the connection's API version (also the topic's ``ApiVersion``).
    """

    template_fields: Sequence[str] = ("name", "salesforce_conn_id")

    def __init__(self, *, name: str, salesforce_conn_id: str = SalesforceStreamingHook.default_conn_name,
                 api_version: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.salesforce_conn_id = salesforce_conn_id
        self.api_version = api_version

    @cached_property
    def hook(self) -> SalesforceStreamingHook:
        """The Streaming hook on ``salesforce_conn_id``."""
        return SalesforceStreamingHook(self.salesforce_conn_id, api_version=self.api_version)


class _TopicDefinitionOperator(_PushTopicOperator):
    """Arguments that define a topic.

    :param query: the SOQL ``SELECT`` whose matching records produce events (templated).
    :param notify_for_fields: ``All``, ``Referenced`` (default), ``Select`` or ``Where``.
    :param operations: which of ``create``, ``update``, ``delete``, ``undelete`` notify (default all).
    :param description: optional description (templated).
    """

    template_fields: Sequence[str] = ("name", "query", "description", "salesforce_conn_id")

    def __init__(self, *, query: str, notify_for_fields: str = "Referenced",
                 operations: Sequence[str] = OPERATIONS, description: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        topic_fields(notify_for_fields=notify_for_fields, operations=operations)  # fail at parse time
        self.query = query
        self.notify_for_fields = notify_for_fields
        self.operations = list(operations)
        self.description = description


class SalesforceCreatePushTopicOperator(_TopicDefinitionOperator):
    """Create a PushTopic; the XCom value is its id. Fails if the name is taken (see
    :class:`SalesforceEnsurePushTopicOperator` for an idempotent task).

    Parameters: see :class:`_TopicDefinitionOperator` and :class:`_PushTopicOperator`.
    """

    def execute(self, context: Context) -> str:
        topic_id = self.hook.create_push_topic(self.name, self.query, notify_for_fields=self.notify_for_fields,
                                               operations=self.operations, description=self.description)
        self.log.info("Created PushTopic %s (%s): channel /topic/%s", self.name, topic_id, self.name)
        return topic_id


class SalesforceEnsurePushTopicOperator(_TopicDefinitionOperator):
    """Make a PushTopic exist with this query and options, changing only what differs.

    The XCom value is ``{"id": str, "changed": bool}`` (changed: created or updated).

    :param is_active: whether the topic delivers events (default True).
    Other parameters: see :class:`SalesforceCreatePushTopicOperator`.
    """

    def __init__(self, *, is_active: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.is_active = is_active

    def execute(self, context: Context) -> dict[str, Any]:
        topic_id, changed = self.hook.ensure_push_topic(
            self.name, self.query, notify_for_fields=self.notify_for_fields, operations=self.operations,
            description=self.description, is_active=self.is_active)
        self.log.info("PushTopic %s (%s) %s", self.name, topic_id, "created or updated" if changed else "unchanged")
        return {"id": topic_id, "changed": changed}


class SalesforceDeletePushTopicOperator(_PushTopicOperator):
    """Delete a PushTopic; the XCom value is the deleted id (None if it did not exist and
    ``missing_ok``).

    :param missing_ok: succeed when no topic has this name (default False: fail).
    Other parameters: see :class:`_PushTopicOperator`.
    """

    def __init__(self, *, missing_ok: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.missing_ok = missing_ok

    def execute(self, context: Context) -> str | None:
        from airflow_provider_salesforce_suite.core.errors import SalesforceNotFoundError

        try:
            topic_id = self.hook.delete_push_topic(self.name)
        except SalesforceNotFoundError:
            if not self.missing_ok:
                raise
            self.log.info("No PushTopic named %s: nothing to delete", self.name)
            return None
        self.log.info("Deleted PushTopic %s (%s)", self.name, topic_id)
        return topic_id
