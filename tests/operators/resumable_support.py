"""Helpers for the retry-after-a-crash tests of resumable operators (ResumableJobMixin)."""

from __future__ import annotations

from typing import Any


class TaskStateStore(dict):
    """An in-memory task state store (the ``get``/``set`` the mixin uses)."""

    def set(self, key: str, value: Any, **_: Any) -> None:
        self[key] = value


class RecordingTaskInstance:
    """What the operators read from ``context["ti"]`` (ids, and XCom pushes recorded)."""

    dag_id, run_id, task_id, map_index = "dag_a", "manual__2026-01-01T00:00:00+00:00", "save", -1

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


class Crash(BaseException):
    """A worker dying: not an ``Exception``, so no clean-up handler of the code under test runs."""


def requests_to(admin: Any, key: str) -> int:
    """Requests the emulator served for ``"METHOD /path"`` exactly, or every path ending so when
    ``key`` starts ``"METHOD */"``.

    :param admin: the ``emulator_admin`` fixture.
    :param key: ``"POST /api/v5/imports"`` or ``"POST */sobjects/InsightsExternalData"``.
    """
    method, _, path = key.partition(" ")
    counts = admin.stats()["requests"]
    if not path.startswith("*"):
        return counts.get(key, 0)
    return sum(n for k, n in counts.items() if k.startswith(method + " ") and k.endswith(path[1:]))
