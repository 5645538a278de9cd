"""A local Airflow deployment against the emulator, as real processes: ``make demo`` and the
integration tests (``tests/integration/airflow_procs.py`` adds PostgreSQL, Redis and Celery) share it.

Each process is the leader of its own process group, so a caller can SIGKILL one and always reap
all of them; every wait is bounded; every process started here is stopped by
:meth:`ProcessSet.stop_all`. :func:`start_sqlite_deployment` is the emulator plus SQLite,
LocalExecutor and one of each Airflow component.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def http_ok(url: str) -> bool:
    """Whether ``GET url`` answers 2xx right now (connection errors are "no")."""
    import requests

    try:
        return requests.get(url, timeout=3).ok
    except requests.RequestException:
        return False


class ProcessSet:
    """Named child processes, each the leader of its own process group, logs in ``log_dir``.

    :param log_dir: where ``<name>.log`` files go (read them when a test fails).
    :param env: the environment every process gets.
    """

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = {}
        # Services the others depend on (databases, brokers): stopped after them, with this signal.
        self.services: dict[str, int] = {}
        self.cleanups: list[Callable[[], None]] = []

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None, user: str | None = None,
              cwd: Path | None = None, service_stop_signal: int | None = None) -> subprocess.Popen:
        """Start ``argv`` as ``name`` (a new process group); appends to ``<name>.log``.

        :param env: variables added to the set's environment for this process only.
        :param user: run as this user (servers that refuse to run as root).
        :param cwd: working directory (default: the log directory).
        :param service_stop_signal: make ``name`` a service: stopped after every other process,
            with this signal first (PostgreSQL's fast shutdown is SIGINT; its SIGTERM waits for clients).
        """
        self.starts[name] = self.starts.get(name, 0) + 1
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        log.write(f"\n===== start #{self.starts[name]}: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd or self.log_dir,
                                user=user)
        log.close()
        self.procs[name] = proc
        if service_stop_signal is not None:
            self.services[name] = service_stop_signal
        return proc

    def run(self, name: str, argv: list[str], *, timeout: float) -> int:
        """Run ``argv`` as ``name`` to its end (logged like :meth:`start`); its exit code.

        :param timeout: seconds; then its group is killed and ``TimeoutError`` raised.
        """
        proc = self.start(name, argv)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{name} did not finish within {timeout:.0f} s (log: {self.log_dir / name}.log)") from None
        finally:
            if self.procs.get(name) is proc:
                self.kill(name)

    def kill(self, name: str, sig: int = signal.SIGKILL, *, timeout: float = 30) -> None:
        """Send ``sig`` to the whole group of ``name`` and wait for its leader to exit."""
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout)
        # The group may outlive its leader (forked children): make sure nothing is left.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        """SIGTERM every group, then SIGKILL what is still there after a few seconds; services last."""
        services = {name: proc for name, proc in self.procs.items() if name in self.services}
        self._stop({name: proc for name, proc in self.procs.items() if name not in services}, signal.SIGTERM)
        for name, proc in services.items():
            self._stop({name: proc}, self.services[name])
        self.procs.clear()
        while self.cleanups:
            self.cleanups.pop()()

    @staticmethod
    def _stop(procs: dict[str, subprocess.Popen], sig: int) -> None:
        for proc in procs.values():
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def assert_running(self, *names: str) -> None:
        """Fail with the log tail of any named process that exited."""
        for name in names or list(self.procs):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, chars: int = 4000) -> str:
        """The end of ``<name>.log``."""
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def start_emulator(procs: ProcessSet, *args: str, timeout: float = 60) -> dict[str, str]:
    """Start ``salesforce-suite-emulator`` on a free port; return its URL, CA bundle and connection JSON.

    :param args: more command-line options (``--pubsub-port 0``, ``--config FILE`` ...).
    """
    # ``python -m``: the emulator of the interpreter running this (console scripts may point elsewhere).
    procs.start("emulator", [sys.executable, "-m", "airflow_provider_salesforce_suite.emulator", "--port", "0",
                             "--cert-dir", str(procs.log_dir / "emulator-tls"), *args])

    def ready() -> dict[str, str] | None:
        procs.assert_running("emulator")
        text = procs.log_tail("emulator", 20000)
        url = re.search(r"listening on (\S+)", text)
        conn = re.search(r"export AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT='(.+)'", text)
        if url and conn:
            ca_bundle = json.loads(conn.group(1)).get("extra", {}).get("ca_bundle", "")
            return {"url": url.group(1), "connection": conn.group(1), "ca_bundle": ca_bundle}
        return None

    return wait_for(ready, timeout=timeout, what="the emulator to listen")


def airflow_env(home: Path, dags: Path, api_port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a throwaway Airflow deployment: SQLite, LocalExecutor, fast loops."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__FERNET_KEY": "9aVb2kB8WQm2m1T6nq6l0o3rS6y3mW0vS3rB0nY8c5E=",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": "integration-test-secret-key",
        "AIRFLOW__API_AUTH__JWT_SECRET": "integration-test-jwt-secret-0123456789abcdef",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__SHARED_STREAM_ACK_TIMEOUT": "60",
        "AIRFLOW__TRIGGERER__SHARED_STREAM_COHORT_GRACE_PERIOD": "1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


#: The SQLite + LocalExecutor deployment's Airflow processes.
SQLITE_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class Stack:
    """The running deployment: processes, the emulator's REST API and the metadata database.

    :param asset_uri: the asset the deployment's event watcher feeds.
    """

    def __init__(self, procs: ProcessSet, emulator: dict[str, str], db: MetadataDB, api_port: int,
                 asset_uri: str) -> None:
        self.procs = procs
        self.asset_uri = asset_uri
        self.emulator = emulator
        self.db = db
        self.api_port = api_port
        import requests

        self._token: str | None = None
        self._http = requests.Session()
        # Per request, not Session.verify: requests lets REQUESTS_CA_BUNDLE override the session's.
        self._verify = emulator["ca_bundle"] or True

    def _sf_token(self) -> str:
        if self._token is None:
            reply = self._http.post(f"{self.emulator['url']}/services/oauth2/token", data={
                "grant_type": "password", "client_id": "emulator", "client_secret": "emulator",
                "username": "admin@emulator.local", "password": "emulator"}, timeout=10, verify=self._verify)
            reply.raise_for_status()
            self._token = reply.json()["access_token"]
        return self._token

    def sf_token(self) -> str:
        """An access token of the emulator's admin user (for REST calls from the test)."""
        return self._sf_token()

    def create_record(self, sobject: str, fields: dict[str, Any]) -> str:
        """Create a record over REST (what a Salesforce user's change looks like to Airflow); its id."""
        reply = self._http.post(f"{self.emulator['url']}/services/data/v64.0/sobjects/{sobject}", json=fields,
                                headers={"Authorization": f"Bearer {self._sf_token()}"}, timeout=10,
                                verify=self._verify)
        if reply.status_code != 201:
            raise RuntimeError(f"creating a {sobject} failed: HTTP {reply.status_code} {reply.text[:500]}")
        return reply.json()["id"]

    def create_opportunity(self, name: str) -> str:
        """Create an Opportunity over REST; its id."""
        return self.create_record("Opportunity", {"Name": name, "StageName": "Prospecting",
                                                  "CloseDate": "2026-12-31", "Amount": 1000})

    def emulator_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the emulator's control API (``/__emulator__`` + ``path``); the decoded reply."""
        reply = self._http.request(method, f"{self.emulator['url']}/__emulator__{path}", json=body, timeout=10,
                                   verify=self._verify)
        reply.raise_for_status()
        return reply.json() if reply.content else None

    def emulator_fault(self, **rule: Any) -> None:
        """Add an emulator fault rule (``latency_ms``, ``path_suffix``, ``method`` ...)."""
        self._http.post(f"{self.emulator['url']}/__emulator__/faults", json=rule, timeout=10,
                        verify=self._verify).raise_for_status()

    def clear_emulator_faults(self) -> None:
        """Remove every emulator fault rule."""
        self._http.delete(f"{self.emulator['url']}/__emulator__/faults", timeout=10,
                          verify=self._verify).raise_for_status()

    def emulator_stats(self) -> dict[str, Any]:
        """The emulator's ``/__emulator__/stats`` document."""
        return self._http.get(f"{self.emulator['url']}/__emulator__/stats", timeout=10, verify=self._verify).json()

    def airflow(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run an ``airflow`` CLI command against the deployment."""
        done = subprocess.run([str(BIN / "airflow"), *args], env=self.procs.env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done

    def events_by_record(self) -> dict[str, list[dict[str, Any]]]:
        """Record id -> the asset events (payloads) carrying it."""
        found: dict[str, list[dict[str, Any]]] = {}
        for event in self.db.asset_events(self.asset_uri):
            payload = event["extra"]["payload"]
            found.setdefault(payload["payload"]["sobject"]["Id"], []).append({**payload, "event_id": event["id"]})
        return found

    def start_airflow(self, components: tuple[str, ...] = SQLITE_COMPONENTS, *, timeout: float = 180,
                      migrate: bool = True) -> None:
        """Migrate the metadata database, start every component, wait for the API server.

        :param components: component names (see :func:`airflow_argv`).
        :param migrate: run ``airflow db migrate`` first (``False``: the caller did).
        """
        if migrate:
            self.airflow("db", "migrate", timeout=300)
        for name in components:
            start_component(self.procs, name)
        wait_for(lambda: self.procs.assert_running()
                 or http_ok(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"),
                 timeout=timeout, what="the API server")

    def activate_watcher(self, dag_id: str, trigger_class: str, *, timeout: float = 120) -> None:
        """Wait for the DAG to be parsed, unpause it, wait until a triggerer runs its watcher.

        :param trigger_class: the watcher trigger's class name (matched against the classpath).
        """
        wait_for(lambda: self.procs.assert_running() or self.db.rows("SELECT 1 FROM dag WHERE dag_id = ?", dag_id),
                 timeout=timeout, what=f"the DAG processor to parse {dag_id}")
        airflow_api(self, "PATCH", f"/dags/{dag_id}", {"is_paused": False})
        # Unpausing activates the watcher: the DAG processor registers the trigger, a triggerer runs it.
        wait_for(lambda: self.procs.assert_running() or self.db.rows(
            "SELECT 1 FROM trigger WHERE classpath LIKE ? AND triggerer_id IS NOT NULL", f"%.{trigger_class}"),
            timeout=timeout, what="the watcher trigger to run in a triggerer")

    def diagnostics(self) -> str:
        """The log tails of the deployment's processes."""
        names = [name for name in self.procs.starts if name not in ("postgres", "redis")]
        return "\n".join(f"--- {name}.log ---\n{self.procs.log_tail(name, 3000)}" for name in names)


def airflow_argv(name: str) -> list[str]:
    """The command line of component ``name`` (``triggerer-2``, ``worker-1``, ``scheduler`` ...).

    Two of a kind on one machine: each skips the log server (they would share its port) and the
    workers get their own Celery node names.
    """
    kind, _, number = name.partition("-")
    if kind == "triggerer" and number:
        return [str(BIN / "airflow"), "triggerer", "--skip-serve-logs"]
    if kind == "worker":
        return [str(BIN / "airflow"), "celery", "worker", "--skip-serve-logs", "--celery-hostname",
                f"{name}@%h", "--concurrency", "2"]
    return [str(BIN / "airflow"), name]


def start_component(procs: ProcessSet, name: str) -> None:
    """(Re)start Airflow component ``name`` of a Celery deployment under its own host name."""
    procs.start(name, airflow_argv(name), env={"SF_COMPONENT_NAME": name})


class MetadataDB:
    """Read-only queries on the deployment's metadata database (``?`` placeholders on both).

    :param target: the SQLite ``airflow.db`` file, or a PostgreSQL SQLAlchemy URL.
    """

    def __init__(self, target: Path | str) -> None:
        self.url = target if isinstance(target, str) else None
        self.path = None if isinstance(target, str) else target

    def rows(self, sql: str, *params: Any) -> list[Any]:
        """Run ``sql``; ``[]`` while the database or its tables are not there yet."""
        if self.url is not None:
            return self._pg_rows(sql, params)
        if not self.path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:  # tables not migrated yet, or a writer holds the lock
            if "no such table" in str(exc) or "locked" in str(exc):
                return []
            raise
        finally:
            conn.close()

    def _pg_rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        import psycopg2
        import psycopg2.extras
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, dbname=url.database,
                                connect_timeout=10)
        try:
            conn.set_session(readonly=True, autocommit=True)
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                cursor.execute(sql.replace("%", "%%").replace("?", "%s"), params)
                return cursor.fetchall()
        except psycopg2.errors.UndefinedTable:
            return []
        finally:
            conn.close()

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        """The asset's events (oldest first) with their ``extra`` decoded."""
        found = self.rows("SELECT e.id, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                          "WHERE a.uri = ? ORDER BY e.id", uri)
        return [{"id": row["id"], "extra": json_value(row["extra"]) or {}} for row in found]

    def dag_runs(self, dag_id: str) -> list[sqlite3.Row]:
        """The DAG's runs, oldest first."""
        return self.rows("SELECT id, run_id, state, run_type FROM dag_run WHERE dag_id = ? ORDER BY id", dag_id)

    def run_events(self, dag_id: str) -> dict[str, list[int]]:
        """run_id -> the asset event ids the run consumed."""
        found = self.rows("SELECT r.run_id, x.event_id FROM dag_run r JOIN dagrun_asset_event x "
                          "ON x.dag_run_id = r.id WHERE r.dag_id = ? ORDER BY x.event_id", dag_id)
        runs: dict[str, list[int]] = {}
        for row in found:
            runs.setdefault(row["run_id"], []).append(row["event_id"])
        return runs

    def xcom_values(self, dag_id: str, task_id: str) -> dict[str, Any]:
        """run_id -> the task's ``return_value`` XCom (decoded)."""
        found = self.rows("SELECT run_id, value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'",
                          dag_id, task_id)
        values = {}
        for row in found:
            values[row["run_id"]] = json_value(row["value"])
        return values

    def asset_state(self, uri: str) -> dict[str, Any]:
        """The asset's state store (key -> decoded value)."""
        found = self.rows("SELECT s.key, s.value FROM asset_state_store s JOIN asset a ON a.id = s.asset_id "
                          "WHERE a.uri = ?", uri)
        return {row["key"]: json_value(row["value"]) for row in found}


def json_value(value: Any) -> Any:
    """A JSON column's value: SQLite hands back text, PostgreSQL's driver decoded objects."""
    return json.loads(value) if isinstance(value, (str, bytes)) and value else value


def start_sqlite_deployment(procs: ProcessSet, home: Path, dags: Path, connections: dict[str, str],
                            *, asset_uri: str, emulator_args: tuple[str, ...] = ()) -> Stack:
    """Emulator, then the SQLite + LocalExecutor deployment (:data:`SQLITE_COMPONENTS`): the
    counterpart of :func:`start_celery_deployment` (bench/bench_deployment.py compares the two).

    :param connections: connection id -> JSON; ``{emulator}`` in a value becomes the emulator's connection.
    :param asset_uri: the asset :class:`Stack` reads events of.
    :param emulator_args: more emulator options (``--pubsub-port 0``, ``--config FILE``).
    """
    emulator = start_emulator(procs, *emulator_args)
    api_port = free_port()
    procs.env = airflow_env(home, dags, api_port, {
        f"AIRFLOW_CONN_{conn_id.upper()}": value.replace("{emulator}", emulator["connection"])
        for conn_id, value in connections.items()})
    stack = Stack(procs, emulator, MetadataDB(home / "airflow.db"), api_port, asset_uri)
    stack.start_airflow()
    return stack


def airflow_api(stack: Stack, method: str, path: str, body: Any = None) -> Any:
    """Call the deployment's REST API (``/api/v2`` + ``path``) as the all-admins user: what a CLI
    command does, without starting a process (seconds each on a busy machine)."""
    if getattr(stack, "_api_token", None) is None:
        reply = stack._http.get(f"http://127.0.0.1:{stack.api_port}/auth/token", timeout=30)
        reply.raise_for_status()
        stack._api_token = reply.json()["access_token"]
    reply = stack._http.request(method, f"http://127.0.0.1:{stack.api_port}/api/v2{path}", json=body, timeout=60,
                                headers={"Authorization": f"Bearer {stack._api_token}"})
    assert reply.ok, (reply.status_code, reply.text[:2000])
    return reply.json() if reply.content else None
