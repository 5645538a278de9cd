"""Bulk job and batch models, their states, and the SQLite file that keeps results.

One model serves both APIs: a Bulk 2.0 job processes its uploads as a whole; a Bulk 1.0 job is a
container of batches, each processed on its own. Per-record results and query result rows live
in a temporary SQLite database (never in memory), so results of millions of rows stream out.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ..metadata.validation import format_datetime


class JobState(str, Enum):
    """States of a job (both APIs) and of a Bulk 1.0 batch."""

    OPEN = "Open"
    UPLOAD_COMPLETE = "UploadComplete"
    IN_PROGRESS = "InProgress"
    JOB_COMPLETE = "JobComplete"
    FAILED = "Failed"
    ABORTED = "Aborted"
    CLOSED = "Closed"  # Bulk 1.0 job: no more batches
    QUEUED = "Queued"  # Bulk 1.0 batch states from here on
    COMPLETED = "Completed"
    NOT_PROCESSED = "NotProcessed"

    @property
    def is_terminal(self) -> bool:
        """Whether nothing will change any more (for a 2.0 job or a 1.0 batch)."""
        return self in (JobState.JOB_COMPLETE, JobState.FAILED, JobState.ABORTED, JobState.COMPLETED,
                        JobState.NOT_PROCESSED)


def now() -> str:
    """The current time in the Bulk APIs' format (``2026-01-02T03:04:05.000+0000``)."""
    return format_datetime(dt.datetime.now(dt.timezone.utc))


def _move(item: Any, message_attr: str, state: JobState, message: str | None) -> None:
    item.state = state
    if message is not None:
        setattr(item, message_attr, message)
    item.system_modstamp = now()


@dataclass
class Job:
    """One Bulk job (1.0 or 2.0, ingest or query).

    :param id: ``750...``.
    :param api: ``"2.0"`` or ``"1.0"``.
    :param operation: insert, update, upsert, delete, hardDelete, query, queryAll.
    :param object: the sObject (query jobs: the queried object).
    :param api_version: e.g. ``"62.0"``.
    :param created_by: the user id.
    """

    id: str
    api: str
    operation: str
    object: str
    api_version: str
    created_by: str
    external_id_field: str | None = None
    content_type: str = "CSV"
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    assignment_rule_id: str | None = None
    concurrency_mode: str = "Parallel"
    query: str | None = None
    state: JobState = JobState.OPEN
    error_message: str | None = None
    created_date: str = field(default_factory=now)
    system_modstamp: str = field(default_factory=now)
    processed: int = 0
    failed: int = 0
    retries: int = 0
    total_processing_ms: int = 0
    uploads: list[Path] = field(default_factory=list)
    upload_bytes: int = 0
    batch_ids: list[str] = field(default_factory=list)
    pk_chunking: dict[str, str] | None = None
    #: Query results: the CSV header line and the row count (set at completion).
    result_header: str | None = None
    result_count: int = 0
    abort_requested: bool = False
    #: Whether processing began (results exist from then on).
    started: bool = False

    @property
    def kind(self) -> str:
        """``"query"`` or ``"ingest"``."""
        return "query" if self.operation in ("query", "queryAll") else "ingest"

    def set_state(self, state: JobState, message: str | None = None) -> None:
        """Move to ``state`` (and remember why, for Failed).

        :param state: the new state.
        :param message: the error message.
        """
        _move(self, "error_message", state, message)


@dataclass
class Batch:
    """A Bulk 1.0 batch.

    :param id: ``751...``.
    :param job_id: its job.
    :param request: the file holding the batch's request body.
    """

    id: str
    job_id: str
    request: Path
    content_type: str = "CSV"
    state: JobState = JobState.QUEUED
    state_message: str | None = None
    created_date: str = field(default_factory=now)
    system_modstamp: str = field(default_factory=now)
    processed: int = 0
    failed: int = 0
    total_processing_ms: int = 0
    #: Query batches: result ids (``752...``), each a slice of the result rows.
    result_ids: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    #: PK chunking: the id range ``[lo, hi)`` this batch queries.
    id_range: tuple[str | None, str | None] | None = None
    records: list[dict[str, Any]] | None = None

    def set_state(self, state: JobState, message: str | None = None) -> None:
        """Move to ``state``.

        :param state: the new state.
        :param message: the state message.
        """
        _move(self, "state_message", state, message)


#: Per-record result kinds kept in the results table.
SUCCESS, FAILURE, UNPROCESSED = 1, 0, 2


class ResultStore:
    """Per-record results and query rows in a temporary SQLite file, plus uploaded bodies as files.

    Thread-safe (one lock): the worker threads write, the event loop reads.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sf-emulator-bulk-"))
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.dir / "results.db", check_same_thread=False, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=MEMORY"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._conn.execute("CREATE TABLE IF NOT EXISTS results (owner TEXT, seq INTEGER, kind INTEGER, "
                           "line TEXT, PRIMARY KEY (owner, kind, seq)) WITHOUT ROWID")
        self._counter = 0

    def new_file(self, suffix: str) -> Path:
        """A fresh path for an uploaded body.

        :param suffix: file name suffix.
        """
        with self._lock:
            self._counter += 1
            return self.dir / f"{self._counter:08d}{suffix}"

    def add(self, owner: str, kind: int, lines: Iterable[tuple[int, str]]) -> None:
        """Store result lines.

        :param owner: the job (2.0) or batch (1.0) id.
        :param kind: :data:`SUCCESS`, :data:`FAILURE` or :data:`UNPROCESSED` (query rows: SUCCESS).
        :param lines: ``(seq, encoded line without line ending)``.
        """
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                                   ((owner, seq, kind, line) for seq, line in lines))
            self._conn.execute("COMMIT")

    def lines(self, owner: str, kinds: tuple[int, ...], *, start: int = 0, limit: int | None = None,
              page: int = 5000) -> Iterator[str]:
        """Stored lines of ``owner`` in ``seq`` order, read page by page.

        :param owner: the job or batch id.
        :param kinds: result kinds wanted.
        :param start: first ``seq``.
        :param limit: at most this many lines.
        :param page: lines read per database round trip.
        """
        marks = ", ".join("?" * len(kinds))
        last = start - 1
        left = limit
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT seq, line FROM results WHERE owner = ? AND kind IN ({marks}) AND seq > ? "
                    "ORDER BY seq LIMIT ?", (owner, *kinds, last, size)).fetchall()
            if not rows:
                return
            for seq, line in rows:
                yield line
            last = rows[-1][0]
            if left is not None:
                left -= len(rows)

    def forget(self, owner: str, files: Iterable[Path] = ()) -> None:
        """Drop an owner's results and uploaded files.

        :param owner: the job or batch id.
        :param files: its uploaded bodies.
        """
        with self._lock:
            self._conn.execute("DELETE FROM results WHERE owner = ?", (owner,))
        for path in files:
            path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Drop everything (emulator reset)."""
        with self._lock:
            self._conn.execute("DELETE FROM results")
            for path in self.dir.iterdir():
                if path.name != "results.db" and not path.name.startswith("results.db"):
                    path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the database and remove the directory."""
        with self._lock:
            self._conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def env_float(name: str, default: float) -> float:
    """A float from the environment (emulator settings for the Bulk worker).

    :param name: variable name.
    :param default: value when unset or malformed.
    """
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default
