"""The documentation site builds with --strict (broken links and missing pages fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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

    def conn(host: str, extra: dict) -> SimpleNamespace:
        return SimpleNamespace(conn_id="docs", host=host, port=None, login="u@example.com", password="pw",
                               extra_dejson=extra)

    config.SalesforceConnectionConfig.from_connection(conn("login", oauth))
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
