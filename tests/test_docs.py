"""The documentation site builds with --strict (broken links and missing pages fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The documentation site, built once with ``mkdocs build --strict``."""
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    done = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_mkdocs_builds_strict(site: Path) -> None:
    assert (site / "connections" / "index.html").exists()
    assert (site / "reference" / "rest" / "index.html").exists()


def _public_classes(*kinds: str) -> dict[str, type]:
    """``module.Class`` -> class, for every public class of the package's ``kinds`` packages
    (``hooks``, ``operators`` ...) that is a hook, an operator (sensors included) or a trigger:
    found by walking the package, so a new module or class is never left out."""
    import importlib
    import inspect
    import pkgutil

    from airflow.sdk import BaseHook, BaseOperator
    from airflow.triggers.base import BaseTrigger

    found: dict[str, type] = {}
    for kind in kinds:
        package = importlib.import_module(f"airflow_provider_salesforce_suite.{kind}")
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name, value in vars(module).items():
                if (inspect.isclass(value) and value.__module__ == module.__name__ and not name.startswith("_")
                        and issubclass(value, (BaseHook, BaseOperator, BaseTrigger))):
                    found[f"{module.__name__}.{name}"] = value
    return found


def test_api_reference_lists_every_public_hook_operator_sensor_and_trigger(site: Path) -> None:
    """Each class has its own entry (mkdocstrings' heading id is the class's full path) on a
    reference page: a class without a docstring, or a module no page names, is missing."""
    classes = _public_classes("hooks", "operators", "sensors", "triggers")
    assert len(classes) > 60
    pages = "".join(page.read_text() for page in (site / "reference").glob("*/index.html"))
    missing = sorted(path for path in classes if f'id="{path}"' not in pages)
    assert not missing, f"missing from the API reference (docs/reference/*.md): {missing}"


# -- connection extras named in the docs exist ---------------------------------------------------------
class _Recording(dict):
    """The parsed extras, remembering every name the config parser asks for."""

    asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)


def _extras_the_parser_reads(monkeypatch) -> set[str]:
    """Every extra name the config parser reads, recorded while it parses one connection of each type."""
    from types import SimpleNamespace

    from airflow_provider_salesforce_suite.core import config

    parse = config._extras
    monkeypatch.setattr(config, "_extras", lambda conn, conn_type=config.CONN_TYPE: _Recording(parse(conn, conn_type)))
    _Recording.asked = set()
    oauth = {"consumer_key": "ck", "consumer_secret": "cs"}

    def conn(host: str, extra: dict, conn_type: str = "salesforce_suite") -> SimpleNamespace:
        return SimpleNamespace(conn_id="docs", conn_type=conn_type, host=host, port=None, login="u@example.com",
                               password="pw", extra_dejson=extra)

    config.SalesforceConnectionConfig.from_connection(conn("login", oauth))
    # The official provider's type, read with its own extra names (docs/migration.md).
    config.SalesforceConnectionConfig.from_connection(conn(None, {"security_token": "t"}, "salesforce"))
    config.PardotConnectionConfig.from_connection(conn("login", {**oauth, "business_unit_id": "0Uv5g000000GmaPCAS"}))
    config.DeskConnectionConfig.from_connection(conn("https://acme.desk.com", {}))
    return set(_Recording.asked)


def _extras_named_in_the_docs() -> dict[str, set[str]]:
    """Extra name -> docs files naming it: ``| `name` | extra |`` table rows, and the keys of JSON
    objects that are extras (an ``"extra"`` value, after "extras"/``--conn-extra``, or with ``auth_type``)."""
    import json
    import re

    decoder = json.JSONDecoder()
    named: dict[str, set[str]] = {}
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text()
        for row in re.finditer(r"^\|([^|\n]+)\|\s*extra\s*\|", text, re.M):
            for name in re.findall(r"`([A-Za-z_]+)`", row.group(1)):
                named.setdefault(name, set()).add(page.name)
        for start in (m.start() for m in re.finditer(r"\{", text)):
            try:
                value, _ = decoder.raw_decode(text, start)
            except ValueError:
                continue
            if not isinstance(value, dict):
                continue
            before = text[max(0, start - 30):start].lower()
            objects = [value["extra"]] if isinstance(value.get("extra"), dict) else []
            if "auth_type" in value or "extras" in before or "conn-extra" in before or '"extra"' in before:
                objects.append(value)
            for extras in objects:
                for name in extras:
                    named.setdefault(name, set()).add(page.name)
    return named


def test_every_connection_extra_named_in_the_docs_is_read_by_the_config_parser(monkeypatch) -> None:
    known = _extras_the_parser_reads(monkeypatch)
    named = _extras_named_in_the_docs()
    assert {"private_key_file", "business_unit_id", "max_retries", "access_token_secret"} <= known
    assert {"auth_type", "private_key_file", "business_unit_id", "pardot_host"} <= set(named)  # the scan finds them
    unknown = {name: sorted(pages) for name, pages in named.items() if name not in known}
    assert not unknown, f"docs name connection extras the config parser never reads: {unknown}"


# -- snippets the docs mark with ``<!-- docs-test: dag -->`` run against the emulator -------------------
def _marked_snippets(page: Path, kind: str = "dag") -> list[str]:
    """The ``python`` code blocks of ``page`` that follow a ``<!-- docs-test: <kind> -->`` line."""
    import re

    pattern = re.compile(rf"^<!-- docs-test: {kind} -->\n```python\n(.*?)^```", re.M | re.S)
    return pattern.findall(page.read_text())


@pytest.fixture(scope="module")
def docs_emulator(tmp_path_factory):
    """An emulator with the Apex REST route the migration page calls."""
    from airflow_provider_salesforce_suite.emulator.config import ApexRestRoute, EmulatorConfig
    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    config = EmulatorConfig(apex_rest=[ApexRestRoute(path="/User/Activity", method="POST", echo=True)])
    with EmulatorServer(cert_dir=tmp_path_factory.mktemp("docs-certs"), config=config) as server:
        yield server


@pytest.fixture
def buckets(tmp_path, monkeypatch) -> Path:
    """``s3://`` (``aws_default``) and ``gs://`` (``google_cloud_default``) object storage, kept in
    local directories: neither cloud provider is installed here."""
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    from airflow.sdk.io import store

    root = tmp_path / "buckets"
    for protocol, conn_id in (("s3", "aws_default"), ("gs", "google_cloud_default")):
        (root / protocol).mkdir(parents=True)
        fs = DirFileSystem(path=str(root / protocol), fs=LocalFileSystem(auto_mkdir=True))
        monkeypatch.setitem(store._STORE_CACHE, f"{protocol}-{conn_id}", store.ObjectStore(protocol, conn_id, fs=fs))
    return root


def _snippets_bundle(page: Path, kind: str, folder: Path, monkeypatch, *, expect: int) -> Path:
    """``page``'s ``kind`` snippets as DAG files in ``folder``, configured as a DAG bundle:
    ``dag.test()`` serializes a DAG from a configured bundle."""
    import json

    snippets = _marked_snippets(page, kind)
    assert len(snippets) == expect
    folder.mkdir()
    for n, code in enumerate(snippets):
        (folder / f"snippet_{n}.py").write_text(code)
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": "docs-snippets", "classpath": local, "kwargs": {"path": str(folder)}}]))
    return folder


def test_migration_after_dags_run_against_the_emulator(airflow_db, docs_emulator, buckets, tmp_path, monkeypatch) -> None:
    """docs/migration.md's "after" DAGs, with the official provider's kind of connection."""
    import csv
    import gzip
    import json

    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_salesforce_suite.emulator.config import (
        DEFAULT_CONSUMER_KEY,
        DEFAULT_CONSUMER_SECRET,
        DEFAULT_PASSWORD,
        DEFAULT_USERNAME,
    )
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    docs_emulator.reset()
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps({
        "conn_type": "salesforce", "login": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD,
        "extra": {"domain": docs_emulator.url, "consumer_key": DEFAULT_CONSUMER_KEY,
                  "consumer_secret": DEFAULT_CONSUMER_SECRET, "ca_bundle": str(docs_emulator.ca_bundle)}}))
    dags = _snippets_bundle(ROOT / "docs" / "migration.md", "dag", tmp_path / "dags", monkeypatch, expect=4)
    bag = DagBag(dag_folder=str(dags))
    assert bag.import_errors == {}
    runs = {}
    for dag_id in ("migrated_bulk_insert", "migrated_apex_rest", "migrated_accounts_to_s3", "migrated_accounts_to_gcs"):
        runs[dag_id] = run = bag.get_dag(dag_id).test()
        assert run.state == "success", dag_id

    names = sorted(r["Name"] for r in SalesforceRestHook("salesforce_default").query("SELECT Name FROM Account"))
    assert names == ["Acme", "Globex"]
    (apex,) = runs["migrated_apex_rest"].get_task_instances()
    assert apex.xcom_pull(task_ids="log_activity")["activity"][0]["action"] == "update page"
    s3_rows = list(csv.reader((buckets / "s3" / "my-bucket" / "salesforce" / "accounts.csv").open()))
    assert s3_rows[0] == ["Id", "Name", "CreatedDate"] and sorted(row[1] for row in s3_rows[1:]) == names
    gs_text = gzip.decompress((buckets / "gs" / "my-bucket" / "salesforce" / "accounts.csv.gz").read_bytes()).decode()
    assert sorted(csv.reader(gs_text.splitlines())) == sorted(s3_rows)  # the Bulk query found the same rows


_OFFICIAL_RUNNER = """
import sys
from types import SimpleNamespace
from bench.official_provider import activate
activate(SimpleNamespace(url=sys.argv[1], ca_bundle=sys.argv[2], connection_json=sys.argv[3]))
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[4])
assert not bag.import_errors, bag.import_errors
for dag_id in sys.argv[5:]:
    run = bag.get_dag(dag_id).test()
    print("STATE", dag_id, run.state)
    for ti in run.get_task_instances():
        print("XCOM", dag_id, ti.xcom_pull(task_ids=ti.task_id))
"""


def test_migration_before_and_after_dags_share_one_official_connection(airflow_db, docs_emulator, tmp_path,
                                                                       monkeypatch) -> None:
    """docs/migration.md's "before" DAGs run on the official provider (installed apart by
    bench/official_provider.py, in a process of their own), then the "after" ones here, with the
    same ``salesforce`` connection: the one the official provider's benchmarks use."""
    import json
    import os
    import subprocess
    import sys
    from types import SimpleNamespace

    from bench.official_provider import DEPS_DIR, connection

    if not (DEPS_DIR / "airflow" / "providers" / "salesforce").is_dir():
        pytest.skip("the official provider is not installed apart: python -m bench.official_provider")
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    docs_emulator.reset()
    server = SimpleNamespace(url=docs_emulator.url, ca_bundle=str(docs_emulator.ca_bundle),
                             connection_json=docs_emulator.connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(connection(server)))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_bundle)  # as the official provider's users trust a CA
    before = _snippets_bundle(ROOT / "docs" / "migration.md", "official-dag", tmp_path / "before", monkeypatch, expect=2)
    done = subprocess.run(
        [sys.executable, "-c", _OFFICIAL_RUNNER, server.url, server.ca_bundle, server.connection_json, str(before),
         "official_bulk_insert", "official_apex_rest"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert "STATE official_bulk_insert success" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]
    assert "STATE official_apex_rest success" in done.stdout, done.stderr[-3000:]
    assert "update page" in done.stdout  # the Apex endpoint's reply, through the official operator

    hook = SalesforceRestHook("salesforce_default")
    assert hook.config.auth_type == "soap_login"
    assert sorted(r["Name"] for r in hook.query("SELECT Name FROM Account")) == ["Acme", "Globex"]
    monkeypatch.delenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST")
    after = _snippets_bundle(ROOT / "docs" / "migration.md", "dag", tmp_path / "after", monkeypatch, expect=4)
    for dag_id in ("migrated_bulk_insert", "migrated_apex_rest"):
        assert DagBag(dag_folder=str(after)).get_dag(dag_id).test().state == "success", dag_id
    assert sorted(r["Name"] for r in hook.query("SELECT Name FROM Account")) == ["Acme", "Acme", "Globex", "Globex"]


# -- snippets that run against the emulator ------------------------------------------------------------
def _snippet(page: str, name: str) -> str:
    """The Python block after ``<!-- snippet: name -->`` in ``docs/<page>``."""
    import re

    text = (ROOT / "docs" / page).read_text()
    found = re.search(rf"<!-- snippet: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.S)
    assert found, f"no snippet {name!r} in docs/{page}"
    return found.group(1)


def test_bulk_submit_only_snippet_runs(airflow_db, salesforce_connection, monkeypatch, tmp_path: Path) -> None:
    """docs/bulk.md's submit-only snippet, as a DAG run with dag.test(): three jobs submitted, one
    mapped sensor per job, fed by the ``job_ids`` XCom."""
    import textwrap

    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook

    body = textwrap.indent(_snippet("bulk.md", "bulk-submit-only"), "    ")
    (tmp_path / "snippet_dag.py").write_text(
        "from datetime import datetime\nfrom airflow.sdk import DAG\n\n"
        "with DAG('docs_bulk_submit_only', schedule=None, start_date=datetime(2026, 1, 1)):\n" + body)
    # dag.test() re-parses the DAG from the dags-folder bundle (settings.DAGS_FOLDER, read at import)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path))
    monkeypatch.setattr("airflow.settings.DAGS_FOLDER", str(tmp_path))
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    run = bag.get_dag("docs_bulk_submit_only").test()
    assert run.state == "success"
    sensors = [ti for ti in run.get_task_instances() if ti.task_id == "wait_for_job"]
    assert len(sensors) == 3 and {ti.state for ti in sensors} == {"success"}
    assert {ti.xcom_pull(task_ids="wait_for_job", map_indexes=ti.map_index)["state"] for ti in sensors} == {
        "JobComplete"}
    hook = SalesforceBulkHook(salesforce_connection)
    loaded = hook.request("GET", hook.data_url("query"), params={"q": "SELECT COUNT() FROM Account"}).json()
    assert loaded["totalSize"] == 300
