"""A gate that holds jobs in progress until a test releases it (the ``hold_jobs`` knob of the
Bulk, Analytics and Pardot admin endpoints).

Jobs wait at the gate after their work is done and before they report a final state, so a client
sees them ``InProgress``/``Running``/``Processing`` for as long as the gate is shut. Coroutines on
any event loop and worker threads wait alike; opening wakes them all at once, without polling.
"""

from __future__ import annotations

import asyncio
import threading


class JobHold:
    """Shut: jobs wait in progress; open (the default): they go on at once."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def held(self) -> bool:
        """Whether jobs are being held."""
        return not self._open.is_set()

    def set(self, held: bool) -> None:
        """Shut (``True``) or open (``False``) the gate; opening releases every waiting job.

        :param held: the new position.
        """
        if held:
            self._open.clear()
            return
        with self._lock:
            self._open.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_wake, future)

    async def wait(self) -> None:
        """Until the gate is open (at once when it is)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._open.is_set():
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        await future

    def wait_blocking(self) -> None:
        """Until the gate is open, from a worker thread."""
        self._open.wait()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():  # a waiter cancelled meanwhile
        future.set_result(None)
