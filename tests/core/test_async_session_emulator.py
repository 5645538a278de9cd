"""AsyncSalesforceSession (aiohttp) makes the same auth, re-auth and retry decisions as the sync one."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceNotFoundError,
    SalesforceServerError,
    SalesforceSessionExpiredError,
    SalesforceTransportError,
)
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook


async def test_async_request_reauth_and_retry(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn(extra={"limit_warning_threshold": 0.9}))
    path = hook.data_url("limits")
    async with hook.async_session() as session:
        first = await session.request("GET", path)
        assert first.status == 200 and first.json()["DailyApiRequests"]["Max"] > 0
        assert session.api_usage is not None and session.api_usage.limit > 0

        emulator_admin.expire_sessions()
        assert (await session.request("GET", path)).raise_for_status().status == 200
        assert emulator_admin.stats()["reauths"] == 1

        emulator_admin.fault(status=503, count=2, path_prefix=path)
        assert (await session.request("GET", path)).status == 200

        emulator_admin.fault(status=503, count=20, path_prefix=path)
        last = await session.request("GET", path)
        with pytest.raises(SalesforceServerError):
            last.raise_for_status()


async def test_async_shares_the_sync_token_cache(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    hook.request("GET", "/services/data/")
    async with hook.async_session() as session:
        await session.request("GET", "/services/data/")
    assert emulator_admin.stats()["token_grants_total"] == 1


async def test_async_rejected_fresh_token_and_errors(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = hook.data_url("limits")
    async with hook.async_session() as session:
        await session.request("GET", path)
        emulator_admin.fault(error_code="INVALID_SESSION_ID", count=5, path_prefix=path)
        response = await session.request("GET", path)
        assert response.status == 401
        with pytest.raises(SalesforceSessionExpiredError):
            response.raise_for_status()
        assert emulator_admin.stats()["token_grants_total"] == 2
        missing = await session.request("GET", hook.data_url("sobjects/Account/001000000000000AAA"))
        with pytest.raises(SalesforceNotFoundError):
            missing.raise_for_status()


async def test_async_dropped_post_not_retried(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = hook.data_url("sobjects/Account")
    async with hook.async_session() as session:
        await session.request("GET", "/services/data/")
        emulator_admin.fault(drop_connection=True, count=1, method="POST", path_prefix=path)
        with pytest.raises(SalesforceTransportError):
            await session.request("POST", path, json={"Name": "x"})
        assert emulator_admin.stats()["requests"].get(f"POST {path}") == 1
        emulator_admin.fault(drop_connection=True, count=1, path_prefix="/services/data/v64.0/limits")
        assert (await session.request("GET", hook.data_url("limits"))).status == 200
