"""The documentation site builds with --strict (broken links and missing pages fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "site" / "connections" / "index.html").exists()


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
    snippets = _marked_snippets(ROOT / "docs" / "migration.md")
    assert len(snippets) == 4
    dags = tmp_path / "dags"
    dags.mkdir()
    for n, code in enumerate(snippets):
        (dags / f"migration_{n}.py").write_text(code)
    # dag.test() serializes a DAG from a configured bundle: the snippets get one of their own.
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": "docs-snippets", "classpath": local, "kwargs": {"path": str(dags)}}]))
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
