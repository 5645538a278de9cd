"""PushTopic operators against the emulator: create, idempotent ensure, delete; no I/O in __init__."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceNotFoundError
from airflow_provider_salesforce_suite.hooks.streaming import SalesforceStreamingHook
from airflow_provider_salesforce_suite.operators.streaming import (
    SalesforceCreatePushTopicOperator,
    SalesforceDeletePushTopicOperator,
    SalesforceEnsurePushTopicOperator,
)


def test_create_ensure_delete(sf_conn) -> None:
    conn = sf_conn("sf_topics")
    query = "SELECT Id, Name, StageName FROM Opportunity"
    ensure = dict(task_id="ensure", name="Deals", query=query, salesforce_conn_id=conn)
    first = SalesforceEnsurePushTopicOperator(**ensure).execute({})
    assert first["changed"] is True
    assert SalesforceEnsurePushTopicOperator(**ensure).execute({}) == {"id": first["id"], "changed": False}
    changed = SalesforceEnsurePushTopicOperator(**ensure, operations=["create", "update"]).execute({})
    assert changed == {"id": first["id"], "changed": True}
    hook = SalesforceStreamingHook(conn)
    assert hook.get_push_topic("Deals")["NotifyForOperationDelete"] is False

    created = SalesforceCreatePushTopicOperator(task_id="create", name="Cases", query="SELECT Id FROM Case",
                                                notify_for_fields="All", salesforce_conn_id=conn).execute({})
    assert hook.get_push_topic("Cases")["Id"] == created
    assert SalesforceDeletePushTopicOperator(task_id="delete", name="Cases", salesforce_conn_id=conn).execute({}) == created
    assert hook.get_push_topic("Cases") is None


def test_delete_missing(sf_conn) -> None:
    conn = sf_conn("sf_topics")
    with pytest.raises(SalesforceNotFoundError, match="Ghost"):
        SalesforceDeletePushTopicOperator(task_id="delete", name="Ghost", salesforce_conn_id=conn).execute({})
    assert SalesforceDeletePushTopicOperator(task_id="delete", name="Ghost", salesforce_conn_id=conn,
                                             missing_ok=True).execute({}) is None


def test_no_io_in_init_and_templated_fields() -> None:
    op = SalesforceEnsurePushTopicOperator(task_id="t", name="{{ params.n }}", query="{{ params.q }}",
                                           salesforce_conn_id="does_not_exist")
    assert set(op.template_fields) >= {"name", "query", "salesforce_conn_id"}
    assert "name" in SalesforceDeletePushTopicOperator.template_fields


@pytest.mark.parametrize("kwargs, message", [
    ({"notify_for_fields": "Some"}, "notify_for_fields"),
    ({"operations": ["merge"]}, "operations"),
    ({"operations": []}, "operations"),
])
def test_bad_arguments_fail_at_parse_time(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        SalesforceCreatePushTopicOperator(task_id="t", name="T", query="SELECT Id FROM Account", **kwargs)
