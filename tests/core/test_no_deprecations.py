"""Using a hook raises no DeprecationWarning from the provider's own code (tenacity 9 deprecated
``wait_exponential_jitter(initial=...)``; every call built that wait and warned)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_salesforce_suite.core.retry import RetryableFault, RetryPolicy, sync_retrying
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

# Warnings are attributed to the module that called the deprecated API (stacklevel): ours.
_OURS = r"airflow_provider_salesforce_suite(\.|$)"


@contextmanager
def our_deprecations_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=DeprecationWarning, module=_OURS)
        warnings.filterwarnings("error", category=PendingDeprecationWarning, module=_OURS)
        yield


def test_sync_hook_call_with_a_retry_warns_nothing(sf_conn, emulator_admin) -> None:
    hook = SalesforceBaseHook(sf_conn())
    path = hook.data_url("limits")
    emulator_admin.fault(status=503, count=1, path_prefix=path)
    with our_deprecations_are_errors():
        assert hook.request("GET", path).ok  # authenticates, meets a 503, backs off, retries


async def test_async_hook_call_warns_nothing(sf_conn) -> None:
    hook = SalesforceBaseHook(sf_conn())
    with our_deprecations_are_errors():
        async with hook.async_session() as session:
            assert (await session.request("GET", hook.data_url("limits"))).ok


def test_backoff_doubles_from_the_initial_wait_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=6, max_seconds=1000, initial_backoff=0.5, max_backoff=3.0)
    waits: list[float] = []
    retrying = sync_retrying(policy)
    retrying.sleep = waits.append  # record the waits instead of sleeping them

    def always_transient() -> None:
        raise RetryableFault("HTTP 503")

    try:
        retrying(always_transient)
    except RetryableFault:
        pass
    assert len(waits) == 6
    for attempt, wait in enumerate(waits, start=1):
        base = min(3.0, 0.5 * 2 ** (attempt - 1))
        assert base <= wait <= base + 0.5, (attempt, wait)  # jitter up to initial_backoff
