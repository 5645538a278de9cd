"""Helpers shared by the event benchmarks (Streaming and Pub/Sub): an in-memory asset state store
and a quiet ``asyncio.run``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any


class AssetState:
    """An asset state store in memory (the triggerer reaches the real one through its supervisor)."""

    def __init__(self, name: str) -> None:
        self.name, self.values = name, {}
        self._by_name, self._by_uri = {name: self}, {}

    def __hash__(self) -> int:
        return hash(self.name)

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


def quiet_run(coro: Any) -> Any:
    """``asyncio.run`` with log lines kept off stdout (the runner reads the case's JSON there)."""
    with contextlib.redirect_stdout(sys.stderr):
        return asyncio.run(coro)
