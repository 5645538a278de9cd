"""Account Engagement (Pardot) API v5: read one page of prospects (skipped without a Business Unit)."""

from __future__ import annotations

from airflow_provider_salesforce_suite.hooks.pardot import PardotHook


def test_read_a_page_of_prospects(pardot_conn_id: str) -> None:
    hook = PardotHook(pardot_conn_id)
    reply = hook.request("GET", hook.v5_path("prospects"), params={"fields": "id,email", "limit": 1})
    assert reply.headers["Content-Type"].split(";")[0] == "application/json"
    body = reply.json()
    assert isinstance(body["values"], list) and len(body["values"]) <= 1
    assert "nextPageUrl" in body and "nextPageToken" in body
    for prospect in body["values"]:
        assert set(prospect) == {"id", "email"} and isinstance(prospect["id"], int)
