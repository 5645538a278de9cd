"""The provider is what Airflow sees: its entry point, its metadata and its connection forms."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest

from airflow_provider_salesforce_suite.get_provider_info import get_provider_info


def _schema() -> dict:
    import airflow

    return json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())


def test_provider_info_matches_airflows_schema() -> None:
    jsonschema.validate(get_provider_info(), _schema())


def test_entry_point_resolves_to_get_provider_info() -> None:
    (entry,) = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_provider_salesforce_suite")]
    assert entry.load()()["package-name"] == "airflow-provider-salesforce-suite"


def test_every_listed_module_imports() -> None:
    info = get_provider_info()
    modules = [m for kind in ("hooks", "operators", "sensors", "triggers") for group in info.get(kind, []) for m in group["python-modules"]]
    assert "airflow_provider_salesforce_suite.hooks.rest" in modules
    for module in modules:
        importlib.import_module(module)


def test_connection_types_and_their_form_fields() -> None:
    types = {c["connection-type"]: c for c in get_provider_info()["connection-types"]}
    assert set(types) == {"salesforce_suite", "salesforce_pardot", "salesforce_desk"}
    suite = types["salesforce_suite"]["conn-fields"]
    for name in ("auth_type", "consumer_key", "consumer_secret", "private_key", "private_key_file", "security_token",
                 "refresh_token", "session_id", "api_version", "proxies", "verify", "timeout", "ca_bundle"):
        assert name in suite, name
        assert suite[name]["label"]
    for secret in ("consumer_secret", "private_key", "security_token", "refresh_token", "session_id"):
        assert suite[secret]["schema"]["format"] == "password", secret
    assert "business_unit_id" in types["salesforce_pardot"]["conn-fields"]
    assert types["salesforce_desk"]["conn-fields"]["access_token_secret"]["schema"]["format"] == "password"


def test_airflow_cli_shows_the_provider(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [str(bin_dir / "airflow"), "providers", "get", "airflow-provider-salesforce-suite", "--output", "json"],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "airflow-provider-salesforce-suite" in done.stdout


@pytest.mark.parametrize("conn_type", ["salesforce_suite", "salesforce_pardot", "salesforce_desk"])
def test_providers_manager_builds_connection_forms(conn_type: str) -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    prefix = f"extra__{conn_type}__"
    fields = {name for name in widgets if name.startswith(prefix)}
    assert fields, f"no form fields registered for {conn_type}"
    sensitive = {name.removeprefix(prefix) for name in fields if widgets[name].is_sensitive}
    assert "consumer_secret" in sensitive or conn_type == "salesforce_desk"
    assert conn_type in manager.field_behaviours
