"""The official Airflow Salesforce provider (``apache-airflow-providers-salesforce``) for the Bulk
benchmarks, installed apart from ``.venv`` and reached through its connection only.

The provider must not be importable by the test suite (a second Salesforce provider in ``.venv``), so
:func:`install` puts it, and pandas/numpy (which its ``write_object_to_file`` needs and ``.venv``
lacks), into ``.bench-deps/official`` with ``pip --target --no-deps`` (everything else it needs,
Airflow, ``apache-airflow-providers-common-compat`` and simple-salesforce, is in ``.venv``).
:func:`activate` puts that directory on the import path of the one case process that needs it.

Its ``SalesforceHook`` always logs in through simple-salesforce's ``SalesforceLogin``, which posts to
``https://{domain}.salesforce.com/services/Soap/u/{version}``. The connection's ``domain`` extra is
set to ``<emulator host:port>/services/Soap/u/<version>#``: the built URL becomes
``https://127.0.0.1:PORT/services/Soap/u/64.0#.salesforce.com/services/Soap/u/64.0`` and the
fragment is never sent, so the SOAP ``login`` reaches the emulator, whose ``serverUrl`` then routes
everything after (Bulk 1.0 ``/services/async/...``, REST ``query_all``) to it as well. Nothing is
patched. ``python -m bench.official_provider`` installs (the ``make bench`` target runs it).
"""

from __future__ import annotations

import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

from bench.bench_rest_transport import VERSION
from bench.runner import BENCH_DIR, BenchEnv

DEPS_DIR = BENCH_DIR.parent / ".bench-deps" / "official"
#: Pinned, so every run measures the same code (pandas is the version pip picks for the provider today).
REQUIREMENTS = ("apache-airflow-providers-salesforce==5.15.1", "pandas==3.1.1", "numpy==2.4.6")
CONN_ID = "salesforce_official"
_STAMP = DEPS_DIR / ".requirements"


def install() -> Path:
    """Install :data:`REQUIREMENTS` into :data:`DEPS_DIR` unless they already are; returns the directory."""
    wanted = "\n".join(REQUIREMENTS)
    if _STAMP.exists() and _STAMP.read_text() == wanted:
        return DEPS_DIR
    shutil.rmtree(DEPS_DIR, ignore_errors=True)  # pip --target does not replace what is there
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-deps", "--target", str(DEPS_DIR), *REQUIREMENTS], check=True)
    _STAMP.write_text(wanted)
    return DEPS_DIR


def connection(env: BenchEnv) -> dict[str, object]:
    """The official provider's connection (conn type ``salesforce``) to the emulator.

    The emulator's user has no security token, and simple-salesforce's login refuses a password
    without one unless an ``organization_id`` is given (the provider's documented "IP filtering"
    login: the same SOAP ``login``, password alone, in the org's ``LoginScopeHeader``, which the
    emulator checks against its org's id).

    :param env: the benchmark environment.
    """
    from airflow_provider_salesforce_suite.emulator.store import ORG_ID  # the seeded org's id

    ours = json.loads(env.connection_json)
    host_port = env.url.split("://", 1)[1].rstrip("/")
    return {
        "conn_type": "salesforce",
        "login": ours["login"],
        "password": ours["password"],
        "extra": {"domain": f"{host_port}/services/Soap/u/{VERSION}#", "version": VERSION,
                  "organization_id": ORG_ID},
    }


def activate(env: BenchEnv) -> None:
    """Make the provider importable in this (case) process and point connection :data:`CONN_ID` at
    the emulator; trust the emulator's CA in the provider's own requests sessions.

    :param env: the benchmark environment.
    """
    path = str(install())
    if path not in sys.path:
        sys.path.insert(0, path)
    import airflow

    # ``airflow`` extends its package path from sys.path once, when first imported.
    airflow.__path__ = pkgutil.extend_path(airflow.__path__, "airflow")
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(connection(env))
    if env.ca_bundle:
        os.environ["REQUESTS_CA_BUNDLE"] = env.ca_bundle


if __name__ == "__main__":
    print(install())
