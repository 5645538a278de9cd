"""The ``salesforce_emulator`` fixture takes schema files and config from ini options or fixture
overrides, as a user's own test suite sets them (run in a pytester session of its own)."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

SCHEMA = {
    "objects": {"Invoice__c": {"fields": {"Total__c": {"type": "currency"}}}},
    "records": {"Account": [{"Id": "001000000000042AAA", "Name": "Seeded Acme"}]},
}
CONFIG = {"users": [{"username": "second@emulator.local", "password": "pw-2"}]}

USER_TEST = """
def _query(server, soql):
    return server.call(lambda: server.state.store.query(soql, api_version="64.0"))["records"]

def test_schema_and_seed(salesforce_emulator_reset):
    server = salesforce_emulator_reset
    assert server.call(lambda: server.state.store.metadata.get("Invoice__c")) is not None
    assert [r["Name"] for r in _query(server, "SELECT Name FROM Account")] == ["Seeded Acme"]
"""


def _ini(pytester: pytest.Pytester, options: str = "") -> None:
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{options}")


def _files(pytester: pytest.Pytester) -> None:
    pytester.mkdir("org")
    (pytester.path / "org" / "schema.json").write_text(json.dumps(SCHEMA))
    (pytester.path / "org" / "emulator.json").write_text(json.dumps(CONFIG))


def test_ini_options_name_schema_files_and_config(pytester: pytest.Pytester) -> None:
    _files(pytester)
    _ini(pytester, "salesforce_emulator_schema = org/schema.json\nsalesforce_emulator_config = org/emulator.json\n")
    pytester.makepyfile(USER_TEST + """
def test_config(salesforce_emulator):
    users = salesforce_emulator.call(lambda: salesforce_emulator.state.config.users)
    assert any(u.username == "second@emulator.local" for u in users)
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_conftest_fixture_override_names_schema_files(pytester: pytest.Pytester) -> None:
    _files(pytester)
    _ini(pytester)
    pytester.makeconftest("""
import pathlib
import pytest

@pytest.fixture(scope="session")
def salesforce_emulator_schema_files():
    return [pathlib.Path(__file__).parent / "org" / "schema.json"]
""")
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_without_options_the_fixture_has_no_custom_schema(pytester: pytest.Pytester) -> None:
    _ini(pytester)
    pytester.makepyfile("""
def test_plain(salesforce_emulator):
    assert salesforce_emulator.call(lambda: salesforce_emulator.state.store.metadata.get("Invoice__c")) is None
""")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_bad_schema_file_fails_with_its_path_not_a_traceback(pytester: pytest.Pytester) -> None:
    pytester.mkdir("org")
    (pytester.path / "org" / "schema.json").write_text(json.dumps({"objects": {"Invoice__c": {"keyPrefix": "x"}}}))
    _ini(pytester, "salesforce_emulator_schema = org/schema.json\n")
    pytester.makepyfile(USER_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*salesforce_emulator: schema file '*schema.json': objects.Invoice__c.keyPrefix: 'x' does not match*"])
    assert "Traceback" not in result.stdout.str()
