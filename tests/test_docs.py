"""The documentation: the site builds with --strict (broken links, missing pages and docstrings the
API reference cannot render fail), the reference lists every public hook, operator, sensor and
trigger, every operator, sensor and trigger is used in a snippet run here against the emulator,
and what the pages say of connections, the emulator and its pytest fixtures holds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pendulum
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]  # docs/emulator.md's pytest configuration runs in a session of its own


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


def test_api_reference_lists_the_core_classes_users_meet(site: Path) -> None:
    """Connection configs, every public exception of ``core.errors``, the file layer's public names
    (``io.__all__``), ``EmulatorServer`` and the pytest plugin's fixtures, each with its own entry."""
    import inspect

    from airflow_provider_salesforce_suite import io
    from airflow_provider_salesforce_suite.core import config, errors
    from airflow_provider_salesforce_suite.emulator import pytest_plugin

    def defined(module, keep) -> set[str]:
        return {f"{module.__name__}.{name}" for name, value in vars(module).items()
                if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__ and keep(value)}

    wanted = (defined(config, lambda v: inspect.isclass(v) and v.__name__.endswith("Config"))
              | defined(errors, lambda v: inspect.isclass(v) and issubclass(v, Exception))
              | {f"{io.__name__}.{name}" for name in io.__all__}
              | {"airflow_provider_salesforce_suite.emulator.server.EmulatorServer"}
              | {f"{pytest_plugin.__name__}.{name}" for name in vars(pytest_plugin)
                 if name.startswith("salesforce_emulator")})
    assert len(wanted) > 30
    pages = "".join(page.read_text() for page in (site / "reference").glob("*/index.html"))
    missing = sorted(path for path in wanted if f'id="{path}"' not in pages)
    assert not missing, f"missing from the API reference (docs/reference/*.md): {missing}"


def test_documented_parameters_exist() -> None:
    """Every ``:param name:`` of a public hook, operator, sensor or trigger (its class or ``__init__``
    docstring) is a parameter of its ``__init__`` or of one its ``**kwargs`` reach. mkdocs.yml turns
    griffe's own check off, as griffe sees the class's signature only."""
    import inspect

    wrong = {}
    for path, cls in _public_classes("hooks", "operators", "sensors", "triggers").items():
        text = (cls.__doc__ or "") + (cls.__init__.__doc__ or "")
        documented = set(re.findall(r":param (?:[^:\s]+ )?(\w+):", text))
        accepted = set()
        for base in cls.__mro__:
            if "__init__" in vars(base):
                try:
                    accepted |= set(inspect.signature(base.__init__).parameters)
                except (TypeError, ValueError):
                    continue
        if documented - accepted:
            wrong[path] = sorted(documented - accepted)
    assert not wrong, f"documented parameters no __init__ takes: {wrong}"


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


# -- the docs' snippets run against the emulator ---------------------------------------------------------
# One marker convention: a fenced block right after ``<!-- docs-test: <kind> -->`` is run here.
#   dag           a DAG file: parsed from a DAG bundle, each of its DAGs run with ``dag.test()``;
#   tasks         tasks as written inside ``with DAG(...)``: a page's ``tasks`` blocks become ONE DAG
#                 (``docs_<page>``), each block a task group run after the previous one;
#   python        a script, run in-process; a page's blocks share one namespace, in order;
#   schema        a schema file (JSON) the docs' emulator loads;
#   official-dag  a DAG for the official provider (docs/migration.md's "before"), run apart;
#   pytest-ini, conftest  a user's pytest ini file and conftest.py, run in a pytest session of their own.
# Each run must succeed (the snippets' own checks are tasks and asserts); a page's extra data and
# checks are in _PAGES below. Markers are HTML comments: the rendered page shows the code only.
RUNNABLE = ("dag", "tasks", "python")
_MARKER = re.compile(r"^<!-- docs-test: ([a-z-]+) -->\n```(\w+)\n(.*?)^```", re.M | re.S)


def _blocks(page: Path, kind: str) -> list[str]:
    """The code of ``page``'s blocks marked ``<!-- docs-test: <kind> -->``."""
    return [code for found_kind, _lang, code in _MARKER.findall(page.read_text()) if found_kind == kind]


def _runnable_pages() -> list[str]:
    return sorted(page.name for page in (ROOT / "docs").glob("*.md")
                  if any(_blocks(page, kind) for kind in RUNNABLE) and page.name != "migration.md")


def test_every_marker_is_known_and_precedes_a_block() -> None:
    """A misspelt kind or a marker without its block would silently skip a snippet."""
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text()
        kinds = re.findall(r"<!-- docs-test: ([^>]*?) -->", text)
        assert set(kinds) <= {*RUNNABLE, "schema", "official-dag", "pytest-ini", "conftest"}, page.name
        assert len(kinds) == len(_MARKER.findall(text)), f"{page.name}: a docs-test marker not followed by a block"


@pytest.fixture(scope="module")
def docs_emulator(tmp_path_factory):
    """One emulator for the docs' snippets: the schema blocks of every page, the Apex REST route
    the pages call, Change Data Capture on Account, the Pub/Sub API when installed."""
    from airflow_provider_salesforce_suite.core.extras import extra_installed
    from airflow_provider_salesforce_suite.emulator.config import ApexRestRoute, EmulatorConfig
    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    schemas = tmp_path_factory.mktemp("docs-schemas")
    files = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for n, code in enumerate(_blocks(page, "schema")):
            files.append(schemas / f"{page.stem}_{n}.json")
            files[-1].write_text(code)
    config = EmulatorConfig(apex_rest=[ApexRestRoute(path="/User/Activity", method="POST", echo=True)],
                            cdc_entities=["Account"])
    with EmulatorServer(cert_dir=tmp_path_factory.mktemp("docs-certs"), config=config, schema_files=files,
                        pubsub_port=0 if extra_installed("pubsub") else None) as server:
        yield server


@pytest.fixture
def buckets(tmp_path, monkeypatch) -> Path:
    """``s3://`` and ``gs://`` object storage kept in local directories (neither cloud provider is
    installed here): for paths naming a connection (``aws_default``, ``google_cloud_default``) and
    for bare ones, which fsspec resolves by protocol."""
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem
    from fsspec.registry import _registry

    from airflow.sdk.io import store

    root = tmp_path / "buckets"
    for protocol, conn_id in (("s3", "aws_default"), ("gs", "google_cloud_default")):
        (root / protocol).mkdir(parents=True)
        folder, scheme = str(root / protocol), protocol

        class Bucket(DirFileSystem):
            protocol, sep, root_marker = (scheme,), "/", ""  # class attributes: upath reads them off the class
            cachable = False

            def __init__(self, *args: Any, _folder: str = folder, **kwargs: Any) -> None:
                super().__init__(path=_folder, fs=LocalFileSystem(auto_mkdir=True))

        monkeypatch.setitem(_registry, protocol, Bucket)
        for alias in (f"{protocol}-{conn_id}", protocol):  # Airflow's stores, with and without a connection
            monkeypatch.setitem(store._STORE_CACHE, alias, store.ObjectStore(protocol, conn_id, fs=Bucket()))
    return root


@pytest.fixture
def docs_env(airflow_db, docs_emulator, buckets, monkeypatch):
    """The emulator, reset, behind every connection id the docs use by default: ``salesforce_suite_default``,
    ``salesforce_pardot_default``, ``salesforce_desk_default`` and the official provider's
    ``salesforce_default``; ``s3://`` and ``gs://`` in local directories."""
    import json
    from types import SimpleNamespace

    from airflow_provider_salesforce_suite.emulator.config import (
        DEFAULT_CONSUMER_KEY,
        DEFAULT_CONSUMER_SECRET,
        DEFAULT_PASSWORD,
        DEFAULT_USERNAME,
    )

    docs_emulator.reset()
    monkeypatch.setenv("HOME", str(buckets.parent / "home"))  # what snippets keep under ~ (the emulator's cert)
    suite = json.loads(docs_emulator.connection_json())
    pardot = {**suite, "conn_type": "salesforce_pardot",
              "extra": {**suite["extra"], "business_unit_id": "0Uv000000000001AAA", "pardot_host": docs_emulator.url}}
    desk = json.loads(docs_emulator.connection_json("salesforce_desk"))
    official = {"conn_type": "salesforce", "login": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD,
                "extra": {"domain": docs_emulator.url, "consumer_key": DEFAULT_CONSUMER_KEY,
                          "consumer_secret": DEFAULT_CONSUMER_SECRET, "ca_bundle": str(docs_emulator.ca_bundle)}}
    for conn_id, conn in (("SALESFORCE_SUITE_DEFAULT", suite), ("SALESFORCE_PARDOT_DEFAULT", pardot),
                          ("SALESFORCE_DESK_DEFAULT", desk), ("SALESFORCE_DEFAULT", official)):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps(conn))
    # The runs' logical date, what ``{{ ds }}`` renders to: today, so windows built from it hold what
    # the snippets write and are windows Salesforce's replication calls accept (the last 30 days).
    ds = pendulum.now("UTC").start_of("day").to_date_string()
    return SimpleNamespace(server=docs_emulator, buckets=buckets, ds=ds)


# The emulator's registered API surfaces -> their row of docs/emulator.md's "What it speaks" table
# (``admin`` is the control API, /__emulator__/, documented with the fault injection and knobs).
_SURFACE_ROWS = {"oauth": "OAuth 2.0", "identity": "OAuth 2.0", "rest": "REST", "apexrest": "REST",
                 "soap": "SOAP (partner)",
                 "streaming": "Streaming API (CometD)", "bulk": "Bulk API 1.0", "pardot": "Pardot",
                 "desk": "Desk API v2", "ui": "UI pages", "admin": None}


def test_emulator_page_lists_every_api_the_emulator_serves(docs_emulator) -> None:
    from airflow_provider_salesforce_suite.emulator.web import SURFACES_KEY

    text = (ROOT / "docs" / "emulator.md").read_text()
    table = text[text.index("## What it speaks"):]
    table = table[:table.index("\n\n", table.index("| API |"))]
    rows = set(re.findall(r"^\| ([^|]+?) \|", table, re.M)) - {"API", "---"}
    assert {"OAuth 2.0", "REST", "SOAP (partner)", "Streaming API (CometD)", "Bulk API 1.0", "Bulk API 2.0",
            "Pub/Sub API", "CRM Analytics", "Pardot", "Desk API v2"} <= rows, rows
    for surface in docs_emulator._runner.app[SURFACES_KEY]:
        assert surface.name in _SURFACE_ROWS, f"the emulator serves {surface.name!r}: add it to 'What it speaks'"
        assert _SURFACE_ROWS[surface.name] in rows | {None}, surface.name


def _tasks_dag(page: Path, blocks: list[str]) -> str:
    """One DAG file holding ``page``'s ``tasks`` blocks, each in a task group after the previous one."""
    import textwrap

    lines = ["import pendulum", "from airflow.sdk import DAG, TaskGroup, chain", "",
             f"with DAG({'docs_' + page.stem.replace('-', '_')!r}, schedule='@daily', catchup=False,",
             "         start_date=pendulum.datetime(2025, 1, 1, tz='UTC')):", "    _groups = []"]
    for n, code in enumerate(blocks):
        # task ids stay as the page writes them: its templates pull XCom by them
        lines += [f"    with TaskGroup('snippet_{n}', prefix_group_id=False) as _group:",
                  textwrap.indent(code, "        ") + "        pass",
                  "    _groups.append(_group)"]
    lines.append("    chain(*_groups)")
    return "\n".join(lines) + "\n"


def _bundle(page: Path, kind: str, folder: Path, monkeypatch) -> Path:
    """``page``'s ``dag`` (or ``official-dag``) blocks and its ``tasks`` DAG as files in ``folder``,
    configured as a DAG bundle: ``dag.test()`` serializes a DAG from a configured bundle."""
    import json

    folder.mkdir()
    for n, code in enumerate(_blocks(page, kind)):
        (folder / f"{page.stem}_{n:02d}.py").write_text(code)
    if kind == "dag" and (tasks := _blocks(page, "tasks")):
        (folder / f"{page.stem}_tasks.py").write_text(_tasks_dag(page, tasks))
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": "docs-snippets", "classpath": local, "kwargs": {"path": str(folder)}}]))
    return folder


def run_page(page_name: str, ds: str, folder: Path, monkeypatch) -> dict[str, Any]:
    """Run ``docs/<page_name>``'s snippets: its ``python`` blocks (one namespace, in order), then every
    DAG of its ``dag`` and ``tasks`` blocks with ``dag.test()`` at logical date ``ds``; each run must succeed.
    Returns the python namespace and the runs by DAG id."""
    from airflow.dag_processing.dagbag import DagBag

    page = ROOT / "docs" / page_name
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    for code in _blocks(page, "python"):
        exec(compile(code, f"docs/{page_name}", "exec"), namespace)  # noqa: S102 - the docs' own code
    runs: dict[str, Any] = {"namespace": namespace}
    if not (_blocks(page, "dag") or _blocks(page, "tasks")):
        return runs
    bag = DagBag(dag_folder=str(_bundle(page, "dag", folder, monkeypatch)))
    assert bag.import_errors == {}, bag.import_errors
    assert bag.dag_ids, f"docs/{page_name}: no DAG in its snippets"
    for dag_id in sorted(bag.dag_ids, key=lambda dag_id: (bag.get_dag(dag_id).fileloc, dag_id)):  # page order
        run = bag.get_dag(dag_id).test(logical_date=pendulum.parse(ds))
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert run.state == "success", f"docs/{page_name}: {dag_id}: {states}"
        assert set(states.values()) <= {"success", "skipped"}, states
        runs[dag_id] = run
    return runs


def _xcom(run, task_id: str) -> Any:
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    return ti.xcom_pull(task_ids=task_id)


def _rest_setup(env) -> None:
    """docs/rest.md's upsert reads ``s3://my-bucket/accounts/<ds>.csv``."""
    path = env.buckets / "s3" / "my-bucket" / "accounts" / f"{env.ds}.csv"
    path.parent.mkdir(parents=True)
    path.write_text("External_Id__c,Name\nACME-1,Acme\nGLOBEX-1,Globex\n")


def _rest_checks(env, runs) -> None:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    rows = list(SalesforceRestHook().query("SELECT External_Id__c, Name FROM Account WHERE External_Id__c != null"))
    assert sorted((row["External_Id__c"], row["Name"]) for row in rows) == [("ACME-1", "Acme"), ("GLOBEX-1", "Globex")]
    assert (env.buckets / "s3" / "my-bucket" / "contacts" / f"{env.ds}.parquet").exists()


def _bulk_setup(env) -> None:
    """docs/bulk.md's ingest reads ``s3://bucket/accounts.parquet`` (upserted on External_Id__c)."""
    from airflow_provider_salesforce_suite.io import RecordWriter

    (env.buckets / "s3" / "bucket").mkdir(parents=True)
    with RecordWriter("s3://bucket/accounts.parquet") as writer:
        writer.write_page([{"External_Id__c": f"BULK-{n}", "Name": f"Bulk {n}"} for n in range(5)])


def _bulk_checks(env, runs) -> None:
    from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook

    sensors = [ti for ti in runs["docs_bulk"].get_task_instances() if ti.task_id == "wait_for_job"]
    assert len(sensors) == 3  # one mapped sensor per job of the submit-only snippet
    states = {ti.xcom_pull(task_ids="wait_for_job", map_indexes=ti.map_index)["state"] for ti in sensors}
    assert states == {"JobComplete"}
    hook = SalesforceBulkHook()
    count = "SELECT COUNT() FROM Account WHERE Name LIKE 'Account %'"
    loaded = hook.request("GET", hook.data_url("query"), params={"q": count}).json()
    assert loaded["totalSize"] == 300
    run = runs["docs_bulk"]
    assert _xcom(run, "load")["records"] == 5
    assert _xcom(run, "extract")["records"] == 5  # the extract runs before the submit-only snippet
    assert sum(_xcom(run, "wait_for_leads").values()) == 50
    assert [b["records_processed"] for b in _xcom(run, "wait_for_batches")] == [10_000, 10_000]


def _analytics_setup(env) -> None:
    """docs/analytics.md loads ``s3://bucket/sales.csv``."""
    path = env.buckets / "s3" / "bucket" / "sales.csv"
    path.parent.mkdir(parents=True)
    path.write_text("Id,Region,Amount\nS1,EMEA,10.50\nS2,AMER,20\nS3,EMEA,5\n")


def _analytics_checks(env, runs) -> None:
    totals = {row["Region"]: row["total"] for row in _xcom(runs["docs_analytics"], "query")}
    assert totals == {"EMEA": 15.5, "AMER": 20}


def _pardot_setup(env) -> None:
    """docs/pardot.md upserts ``vip.csv`` and imports ``leads.csv``; the emulator's jobs take 0.3 s."""
    import requests

    folder = env.buckets / "s3" / "bucket" / "pardot"
    folder.mkdir(parents=True)
    (folder / "vip.csv").write_text("email,firstName\nada@example.com,Ada\n")
    (folder / "leads.csv").write_text("email,firstName\ngrace@example.com,Grace\nalan@example.com,Alan\n")
    requests.post(f"{env.server.url}/__emulator__/pardot", json={"job_seconds": 0.3},
                  verify=str(env.server.ca_bundle), timeout=10).raise_for_status()


_PAGES: dict[str, tuple[Any, Any]] = {  # page -> (setup before the run, checks after it)
    "rest.md": (_rest_setup, _rest_checks),
    "bulk.md": (_bulk_setup, _bulk_checks),
    "analytics.md": (_analytics_setup, _analytics_checks),
    "pardot.md": (_pardot_setup, None),
}


@pytest.mark.parametrize("page_name", _runnable_pages())
def test_page_snippets_run_against_the_emulator(page_name: str, docs_env, tmp_path, monkeypatch) -> None:
    from airflow_provider_salesforce_suite.core.extras import extra_installed

    if page_name == "pubsub.md" and not extra_installed("pubsub"):
        pytest.skip("the pubsub extra is not installed")
    setup, checks = _PAGES.get(page_name, (None, None))
    if setup:
        setup(docs_env)
    runs = run_page(page_name, docs_env.ds, tmp_path / "dags", monkeypatch)
    if checks:
        checks(docs_env, runs)


def _public_snippet_classes() -> dict[str, type]:
    return {path: cls for path, cls in _public_classes("operators", "sensors", "triggers").items()}


def test_every_operator_sensor_and_trigger_is_in_a_snippet_ci_runs() -> None:
    """Every public operator, sensor and trigger class (found by walking the package) is named in a
    ``dag``, ``tasks`` or ``python`` block of docs/*.md: the blocks the tests above run."""
    code = "\n".join(block for page in (ROOT / "docs").glob("*.md") for kind in RUNNABLE
                     for block in _blocks(page, kind))
    classes = _public_snippet_classes()
    assert len(classes) >= 50
    missing = sorted(path for path, cls in classes.items() if not re.search(rf"\b{cls.__name__}\b", code))
    assert not missing, f"not used in any snippet CI runs (docs/*.md, <!-- docs-test: ... -->): {missing}"


def test_migration_after_dags_run_against_the_emulator(docs_env, tmp_path, monkeypatch) -> None:
    """docs/migration.md's "after" DAGs, with the official provider's kind of connection."""
    import csv
    import gzip

    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    runs = run_page("migration.md", docs_env.ds, tmp_path / "dags", monkeypatch)
    migrated = {"migrated_bulk_insert", "migrated_apex_rest", "migrated_accounts_to_s3", "migrated_accounts_to_gcs"}
    assert migrated <= set(runs)
    names = sorted(r["Name"] for r in SalesforceRestHook("salesforce_default").query("SELECT Name FROM Account"))
    assert names == ["Acme", "Globex"]
    assert _xcom(runs["migrated_apex_rest"], "log_activity")["activity"][0]["action"] == "update page"
    buckets = docs_env.buckets
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


def test_migration_before_and_after_dags_share_one_official_connection(docs_env, tmp_path, monkeypatch) -> None:
    """docs/migration.md's "before" DAGs run on the official provider (installed apart by
    bench/official_provider.py, in a process of their own), then the "after" ones here, with the
    same ``salesforce`` connection: the one the official provider's benchmarks use."""
    import json
    import os
    from types import SimpleNamespace

    from bench.official_provider import DEPS_DIR, connection

    if not (DEPS_DIR / "airflow" / "providers" / "salesforce").is_dir():
        pytest.skip("the official provider is not installed apart: python -m bench.official_provider")
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    emulator = docs_env.server
    server = SimpleNamespace(url=emulator.url, ca_bundle=str(emulator.ca_bundle),
                             connection_json=emulator.connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(connection(server)))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_bundle)  # as the official provider's users trust a CA
    page = ROOT / "docs" / "migration.md"
    before = _bundle(page, "official-dag", tmp_path / "before", monkeypatch)
    assert len(_blocks(page, "official-dag")) == 2
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
    after = _bundle(page, "dag", tmp_path / "after", monkeypatch)
    for dag_id in ("migrated_bulk_insert", "migrated_apex_rest"):
        assert DagBag(dag_folder=str(after)).get_dag(dag_id).test().state == "success", dag_id
    assert sorted(r["Name"] for r in hook.query("SELECT Name FROM Account")) == ["Acme", "Acme", "Globex", "Globex"]


# -- docs/emulator.md's pytest configuration, in a user's test suite -------------------------------------
_USER_TEST = """
def _names(server, soql):
    return [r["Name"] for r in server.call(lambda: server.state.store.query(soql, api_version="64.0"))["records"]]

def test_the_org(salesforce_emulator_reset):
    server = salesforce_emulator_reset
    assert server.call(lambda: server.state.store.metadata.get("Invoice__c")) is not None
    assert _names(server, "SELECT Name FROM Account") == ["Seeded Acme"]
"""


_LOOP_SCOPE = "asyncio_default_fixture_loop_scope = function\n"  # pytest-asyncio warns without it


def _org_files(folder: Path) -> None:
    import json

    folder.mkdir(parents=True)
    (folder / "snapshot.json").write_text(json.dumps({
        "objects": {"Invoice__c": {"fields": {"Total__c": {"type": "currency"}}}},
        "records": {"Account": [{"Id": "001000000000042AAA", "Name": "Seeded Acme"}]}}))
    (folder / "extra_fields.json").write_text(json.dumps({"fields": {"Account": {"Tier__c": {"type": "text"}}}}))
    (folder / "emulator.json").write_text(json.dumps({"users": [{"username": "ops@emulator.local", "password": "pw"}]}))


def test_the_documented_pytest_ini_configures_the_fixture(pytester: pytest.Pytester) -> None:
    (ini,) = _blocks(ROOT / "docs" / "emulator.md", "pytest-ini")
    _org_files(pytester.path / "tests" / "org")
    pytester.makeini(ini + _LOOP_SCOPE)
    pytester.makepyfile(_USER_TEST + """
def test_fields_and_users(salesforce_emulator):
    server = salesforce_emulator
    assert "Tier__c" in server.call(lambda: server.state.store.metadata.get("Account")).fields
    assert any(u.username == "ops@emulator.local" for u in server.call(lambda: server.state.config.users))
""")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_documented_conftest_override_names_schema_files(pytester: pytest.Pytester) -> None:
    (conftest,) = _blocks(ROOT / "docs" / "emulator.md", "conftest")
    _org_files(pytester.path / "org")
    pytester.makeini("[pytest]\n" + _LOOP_SCOPE)
    pytester.makeconftest(conftest)
    pytester.makepyfile(_USER_TEST)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
