"""CRM Analytics: list datasets (a live org without Analytics skips, with the org's answer)."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.hooks.analytics import SalesforceAnalyticsHook
from tests.contract.contract_org import Org


def test_list_datasets(org: Org) -> None:
    hook = SalesforceAnalyticsHook(org.conn_id)
    reply = org.raw("GET", hook.wave_url("datasets"), params={"pageSize": 1})
    if org.live and reply.status_code in (403, 404):
        error = (reply.json() or [{}])[0] if reply.headers.get("Content-Type", "").startswith("application/json") else {}
        pytest.skip(f"CRM Analytics answers {reply.status_code} {error.get('errorCode')}: {error.get('message')} "
                    "(not enabled for this org or user)")
    assert reply.status_code == 200
    body = reply.json()
    assert isinstance(body["datasets"], list)
    assert body["url"].startswith(hook.wave_url("datasets"))
    for dataset in body["datasets"]:
        assert dataset["type"] == "dataset" and dataset["id"].startswith("0Fb")
        assert dataset["url"] == hook.wave_url(f"datasets/{dataset['id']}")
