"""Without an extra, the feature that needs it says which extra to install, before doing any work.

Each check runs in a subprocess with the extra's modules hidden (``sys.modules[name] = None``
makes ``import name`` fail as if it were not installed), since this process has them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PIP = "pip install 'airflow-provider-salesforce-suite[{}]'"


def run_without(modules: list[str], body: str, *args: str) -> dict[str, dict[str, str]]:
    """Run ``body`` with ``modules`` hidden; it fills ``out[name]`` through ``check(name, fn)``."""
    code = textwrap.dedent("""
        import json, sys
        for name in {modules!r}:
            sys.modules[name] = None
        out = {{}}
        def check(name, fn):
            try:
                fn()
                out[name] = {{"raised": None}}
            except BaseException as exc:
                out[name] = {{"raised": type(exc).__name__, "message": str(exc),
                             "import_error": isinstance(exc, ImportError)}}
    """).format(modules=modules) + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_names_the_extra(result: dict[str, str], extra: str, module: str) -> None:
    assert result["raised"] == "SalesforceMissingExtraError", result
    assert result["import_error"], result  # still an ImportError for code that catches those
    assert PIP.format(extra) in result["message"] and module in result["message"], result


def test_parquet_without_the_extra_fails_before_the_bulk_job_is_created(sf_conn, emulator_admin, tmp_path) -> None:
    conn_id = sf_conn()
    parquet = tmp_path / "in.parquet"
    results = run_without(["pyarrow"], f"""
        from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook
        from airflow_provider_salesforce_suite.io import RecordWriter, iter_records
        check("extract", lambda: SalesforceBulkHook({conn_id!r}).extract("SELECT Id FROM Account", {str(tmp_path / "out.parquet")!r}))
        check("writer", lambda: RecordWriter({str(tmp_path / "w.parquet")!r}))
        check("reader", lambda: next(iter_records({str(parquet)!r})))
        check("csv", lambda: RecordWriter({str(tmp_path / "w.csv")!r}))
    """)
    for name in ("extract", "writer", "reader"):
        assert_names_the_extra(results[name], "parquet", "pyarrow")
    assert "Parquet" in results["writer"]["message"]
    assert results["csv"]["raised"] is None  # other formats do not need it
    assert not [key for key in emulator_admin.stats()["requests"] if "/jobs/" in key]  # no job was created


def test_pubsub_without_the_extra_names_it_at_hook_and_emulator_start(tmp_path) -> None:
    results = run_without(["grpc"], f"""
        from airflow_provider_salesforce_suite.hooks.pubsub import SalesforcePubSubHook
        from airflow_provider_salesforce_suite.core.pubsub import stubs
        from airflow_provider_salesforce_suite.emulator.server import EmulatorServer
        check("hook", lambda: SalesforcePubSubHook("no_such_conn"))
        check("stubs", stubs)
        check("emulator", lambda: EmulatorServer(cert_dir={str(tmp_path)!r}, pubsub_port=0))
        check("emulator_without_pubsub", lambda: EmulatorServer(cert_dir={str(tmp_path)!r}))
    """)
    for name in ("hook", "stubs", "emulator"):
        assert_names_the_extra(results[name], "pubsub", "grpc")
    assert results["emulator_without_pubsub"]["raised"] is None


def test_each_module_of_the_pubsub_extra_is_checked() -> None:
    results = run_without(["fastavro"], """
        from airflow_provider_salesforce_suite.hooks.pubsub import SalesforcePubSubHook
        check("hook", lambda: SalesforcePubSubHook("no_such_conn"))
    """)
    assert_names_the_extra(results["hook"], "pubsub", "fastavro")


def test_emulator_cli_pubsub_port_without_the_extra_is_a_usage_error(tmp_path) -> None:
    code = ("import sys; sys.modules['grpc'] = None\n"
            "from airflow_provider_salesforce_suite.emulator.cli import main\n"
            f"main(['--port', '0', '--pubsub-port', '0', '--cert-dir', {str(tmp_path)!r}])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert PIP.format("pubsub") in done.stderr and "Traceback" not in done.stderr


def test_installed_extras_pass_the_check() -> None:
    from airflow_provider_salesforce_suite.core.extras import EXTRAS, extra_installed, require_extra

    for extra in EXTRAS:
        assert extra_installed(extra), extra  # the test environment has them all
        require_extra(extra, "This test")
    with pytest.raises(KeyError):
        require_extra("no_such_extra", "This test")
