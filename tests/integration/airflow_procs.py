"""Real processes for integration tests: the emulator and Airflow's components, each in its own
process group so a test can SIGKILL one and always reap all of them.

Every wait is bounded; every process started here is stopped by :meth:`ProcessSet.stop_all`.
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
from pathlib import Path
from typing import Any, Callable

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

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        """Start ``argv`` as ``name`` (a new process group); appends to ``<name>.log``."""
        self.starts[name] = self.starts.get(name, 0) + 1
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        log.write(f"\n===== start #{self.starts[name]}: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=self.log_dir)
        log.close()
        self.procs[name] = proc
        return proc

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
        """SIGTERM every group, then SIGKILL what is still there after a few seconds."""
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
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
        self.procs.clear()

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
    procs.start("emulator", [str(BIN / "salesforce-suite-emulator"), "--port", "0",
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


class MetadataDB:
    """Read-only queries on the deployment's SQLite metadata database.

    :param path: the ``airflow.db`` file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        """Run ``sql``; ``[]`` while the database is not there yet."""
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

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        """The asset's events (oldest first) with their ``extra`` decoded."""
        found = self.rows("SELECT e.id, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                          "WHERE a.uri = ? ORDER BY e.id", uri)
        return [{"id": row["id"], "extra": json.loads(row["extra"]) if row["extra"] else {}} for row in found]

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
            value = row["value"]
            values[row["run_id"]] = json.loads(value) if isinstance(value, (str, bytes)) else value
        return values

    def asset_state(self, uri: str) -> dict[str, Any]:
        """The asset's state store (key -> decoded value)."""
        found = self.rows("SELECT s.key, s.value FROM asset_state_store s JOIN asset a ON a.id = s.asset_id "
                          "WHERE a.uri = ?", uri)
        return {row["key"]: json.loads(row["value"]) if isinstance(row["value"], str) else row["value"]
                for row in found}


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
            procs.start(name, [str(BIN / "airflow"), name])
    finally:
        producer.join(timeout=60)
    assert not errors, errors
    assert len(created) == count
    return created
