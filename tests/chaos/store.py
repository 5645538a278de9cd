"""A file-backed task state store: what Airflow keeps for a task instance between its tries."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class FileTaskStateStore:
    """``context["task_state_store"]`` of one task instance, kept in a JSON file so that every try
    (a separate process, possibly killed) sees what the previous ones stored.

    Each ``set``/``delete`` rewrites the file atomically (write a temporary file, then rename), as
    Airflow's store commits each key: a worker killed mid-write leaves the previous contents.

    :param path: the JSON file (created on the first ``set``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def _save(self, values: dict[str, Any]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(values, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or ``default``.

        :param key: the key.
        :param default: returned when the key is not stored.
        """
        return self._load().get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        """Store a JSON value (``retention`` and other keywords are accepted and ignored).

        :param key: the key.
        :param value: any JSON value but None (as Airflow's store).
        """
        if value is None:
            raise ValueError("Cannot set value as None")
        values = self._load()
        values[key] = json.loads(json.dumps(value))  # what a JSON round trip through Airflow gives back
        self._save(values)

    def delete(self, key: str) -> None:
        """Remove a key (no error when absent).

        :param key: the key.
        """
        values = self._load()
        if values.pop(key, None) is not None:
            self._save(values)

    def clear(self) -> None:
        """Remove every key."""
        self._save({})

    def as_dict(self) -> dict[str, Any]:
        """Everything stored (for the report)."""
        return self._load()
