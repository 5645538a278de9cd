"""The provider is what Airflow sees: its entry point, its metadata and its connection forms."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

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


_PACKAGE_DIR = Path(__file__).resolve().parents[1] / "airflow_provider_salesforce_suite"
# conf.get / getboolean / getint / getfloat / getjson / getlist / has_option("section", "option" ...
_CONF_READ = re.compile(r"""\bconf\.(?:get\w*|has_option)\(\s*["'](\w+)["']\s*,\s*["'](\w+)["']""")
_SECTION = "salesforce_suite"


def _conf_reads() -> set[tuple[str, str]]:
    return {match.groups() for path in _PACKAGE_DIR.rglob("*.py") for match in _CONF_READ.finditer(path.read_text())}


def test_every_option_the_code_reads_is_declared_and_every_declared_one_read() -> None:
    reads = {option for section, option in _conf_reads() if section == _SECTION}
    assert "failed_records_base_uri" in reads  # the grep sees the reads it must see
    unmatched = [f"{path.name}: {line.strip()}" for path in _PACKAGE_DIR.rglob("*.py")
                 for line in path.read_text().splitlines()
                 if f'"{_SECTION}"' in line and "conf." in line and not line.lstrip().startswith("#")
                 and not _CONF_READ.search(line)]
    assert not unmatched, f"conf reads of [{_SECTION}] the grep cannot parse: {unmatched}"
    section = get_provider_info().get("config", {}).get(_SECTION)
    assert section, f"no [{_SECTION}] section in get_provider_info()['config']"
    declared = section["options"]
    assert reads - set(declared) == set(), "read but not declared"
    assert set(declared) - reads == set(), "declared but never read"
    documented = (_PACKAGE_DIR.parent / "docs" / "deployment.md").read_text()
    for name, option in declared.items():
        assert option["description"] and option["type"] in ("string", "boolean", "integer", "float"), name
        assert f"| `{name}` |" in documented, f"[{_SECTION}] {name} is missing from docs/deployment.md's table"


def test_airflow_knows_the_declared_options(monkeypatch) -> None:
    from airflow.configuration import conf
    from airflow.providers_manager import ProvidersManager

    ours = dict(ProvidersManager().provider_configs)["airflow-provider-salesforce-suite"]
    assert "failed_records_base_uri" in ours[_SECTION]["options"]
    # Declared without a default: unset it reads as nothing (the operators' temp-dir fallback applies).
    monkeypatch.delenv("AIRFLOW__SALESFORCE_SUITE__FAILED_RECORDS_BASE_URI", raising=False)
    assert conf.get(_SECTION, "failed_records_base_uri", fallback=None) is None
    monkeypatch.setenv("AIRFLOW__SALESFORCE_SUITE__FAILED_RECORDS_BASE_URI", "s3://bucket/failed")
    assert conf.get(_SECTION, "failed_records_base_uri") == "s3://bucket/failed"


def test_connection_forms_have_every_documented_extra_and_nothing_undocumented() -> None:
    from tests.docs_connections import documented_extras

    documented = documented_extras()
    # The scan sees what it must (the extras issue #15 found missing from the form among them).
    assert {"limit_warning_threshold", "max_retries", "retry_max_seconds", "pubsub_endpoint"} <= documented["salesforce_suite"]
    assert {"business_unit_id", "consumer_key"} <= documented["salesforce_pardot"]
    assert {"access_token_secret", "rate_limit_max_wait"} <= documented["salesforce_desk"]
    for conn_type in documented:
        form = _conn_fields(conn_type)
        assert documented[conn_type] - form == set(), f"{conn_type}: documented extras missing from the form"
        assert form - documented[conn_type] == set(), f"{conn_type}: form fields the docs' table does not document"
        for name in form:
            assert _conn_fields(conn_type, labels=True)[name], (conn_type, name)


def _conn_fields(conn_type: str, *, labels: bool = False) -> Any:
    (entry,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type]
    fields = entry["conn-fields"]
    return {name: field.get("label") for name, field in fields.items()} if labels else set(fields)
