"""The one Airflow internal the provider reads, checked on the installed Airflow.

``SalesforceEventTrigger`` commits replay ids to the state store of every asset that watches it.
Airflow 3.3 gives the trigger an ``AssetStateStoreAccessors`` with no public way to list its
assets, so ``_event_stream._accessors`` reads its ``_by_name``/``_by_uri`` dicts. These tests build
the store exactly as the triggerer does; if an Airflow upgrade changes it they fail with a message
saying what to revisit (docs/deployment.md, "Asset state across triggerers").
"""

from __future__ import annotations

import inspect

from airflow.sdk import Asset
from airflow.sdk.execution_time.context import AssetStateStoreAccessor, AssetStateStoreAccessors

from airflow_provider_salesforce_suite.triggers._event_stream import _accessors

UPGRADE = ("Airflow's AssetStateStoreAccessors changed: revisit "
           "airflow_provider_salesforce_suite/triggers/_event_stream.py::_accessors (and docs/deployment.md)")


def store_of(*assets: tuple[str, str]) -> AssetStateStoreAccessors:
    """What the triggerer hands a watcher: inlets built from ``workload.watched_assets`` (name -> uri)."""
    return AssetStateStoreAccessors(inlets=[Asset(name=name, uri=uri) for name, uri in assets])


def test_every_watched_asset_is_found() -> None:
    found = _accessors(store_of(("orders", "salesforce://org/topic/A"), ("audit", "salesforce://org/topic/B")))
    assert found == [AssetStateStoreAccessor(name="orders"), AssetStateStoreAccessor(name="audit")], UPGRADE
    assert all(inspect.iscoroutinefunction(a.aget) and inspect.iscoroutinefunction(a.aset) for a in found), UPGRADE
    # Accessors are dict keys in the producer: one entry per asset however many watchers share it.
    assert len({*found, AssetStateStoreAccessor(name="orders")}) == 2, UPGRADE


def test_the_triggerer_still_builds_the_store_from_the_watched_assets() -> None:
    from airflow.jobs import triggerer_job_runner

    source = inspect.getsource(triggerer_job_runner)
    assert "asset_state_store = AssetStateStoreAccessors(" in source and "watched_assets" in source, UPGRADE


def test_without_the_internals_the_public_single_asset_methods_serve() -> None:
    class Future:  # a later AssetStateStoreAccessors without the two dicts
        async def aget(self, key, default=None): ...
        async def aset(self, key, value): ...

    store = Future()
    assert _accessors(store) == [store]
    assert _accessors(None) == []
