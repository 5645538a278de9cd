"""Polling bounded per job, not per trigger: what the Bulk, Analytics and Pardot job triggers share.

A triggerer runs all its triggers on one event loop. Per loop there is one :class:`JobPoller`:

- one hook (one HTTP session, one token, a few pooled TLS connections) per
  ``(hook class, connection id, API version)``, shared by every trigger polling through it and
  closed when the last poll that uses it stops;
- one poll loop per watched status call (``("bulk-2.0", "ingest", job_id)`` ...), however many
  triggers wait on it: every subscriber gets every result (or the error), and the loop polls at
  the smallest interval its subscribers asked for. A subscriber that leaves (its trigger was
  cancelled: triggerer reassignment, task cleared, or it fired) unsubscribes; the last one out
  stops the job's poll loop.

At most :data:`POLLS_IN_FLIGHT` status calls of one hook are in flight at once: polls due together
queue for a moment instead of opening a TLS connection each (each costs ~250 KiB on the triggerer,
and Salesforce limits an org's concurrent requests).

200 deferred waits on 50 jobs cost 50 status calls an interval, not 200.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

#: Status calls of one shared hook in flight at once (so at most this many pooled connections).
POLLS_IN_FLIGHT = 8
#: A status call: takes the shared hook, returns the job's status.
Poll = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class HookSpec:
    """Which shared hook a watch polls through: equal specs share one hook.

    :param hook_class: a Salesforce or Pardot hook class (its ``conn_name_attr`` names the
        connection argument).
    :param conn_id: the Airflow connection id.
    :param api_version: overrides the connection's API version.
    """

    hook_class: type
    conn_id: str
    api_version: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None]:
        cls = self.hook_class
        return f"{cls.__module__}.{cls.__qualname__}", self.conn_id, self.api_version

    def make(self) -> Any:
        """A new hook (no I/O until it is used)."""
        return self.hook_class(**{self.hook_class.conn_name_attr: self.conn_id}, api_version=self.api_version)


async def close_sessions(hook: Any) -> None:
    """Close whatever session a hook opened lazily (the aiohttp twin, the requests session).

    :param hook: a Salesforce or Pardot hook.
    """
    if getattr(hook, "_async_session", None) is not None:
        await hook._async_session.close()
    session = vars(hook).get("session")  # a cached_property only once it was used
    if session is not None:
        await asyncio.to_thread(session.close)


class _SharedHook:
    def __init__(self, spec: HookSpec) -> None:
        self.spec = spec
        self.hook = spec.make()
        self.users = 0
        self.in_flight = asyncio.Semaphore(POLLS_IN_FLIGHT)


class _Watch:
    """The poll loop of one status call and its subscribers (subscription -> interval)."""

    def __init__(self, poller: JobPoller, key: tuple[Any, ...], shared: _SharedHook, poll: Poll) -> None:
        self.poller = poller
        self.key = key
        self.shared = shared
        self.poll = poll
        self.subscribers: dict[Subscription, float] = {}
        self.seq = 0  # results published so far
        self.result: Any = None
        self.error: BaseException | None = None
        self._published = asyncio.Event()
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        return min(self.subscribers.values(), default=0.0)

    def join(self, subscription: Subscription, interval: float) -> None:
        shorter = bool(self.subscribers) and interval < self.interval
        self.subscribers[subscription] = interval
        if shorter:
            self._wake.set()  # the loop re-reads the interval
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"salesforce-job-poll {self.key}")
            # A callback, not a finally: a task cancelled before its first step never runs its body.
            self.task.add_done_callback(lambda _task: self.poller._ended(self))

    def leave(self, subscription: Subscription) -> None:
        self.subscribers.pop(subscription, None)
        if not self.subscribers and self.task is not None and not self.task.done():
            self.poller._forget(self)  # a wait arriving now starts a new loop, not this dying one
            self.task.cancel()

    def _publish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.seq += 1
        published, self._published = self._published, asyncio.Event()
        published.set()

    async def next(self, seen: int) -> int:
        """Until a result after number ``seen`` is out (or the loop ended with an error); its number."""
        while self.seq <= seen and self.error is None:
            await self._published.wait()
        return self.seq

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.subscribers:
            try:
                async with self.shared.in_flight:
                    result = await self.poll(self.shared.hook)
            except Exception as exc:  # every subscriber decides what the error means
                self._publish(error=exc)
                self.poller._forget(self)  # a wait arriving later polls afresh
                return
            self._publish(result)
            polled = loop.time()
            while (delay := polled + self.interval - loop.time()) > 0:
                self._wake.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    break


class Subscription:
    """One trigger's view of one watched status call."""

    def __init__(self, watch: _Watch) -> None:
        self.watch = watch
        self.seen = 0

    async def next(self) -> Any:
        """The newest result this subscriber has not seen yet (waits for the next poll).

        :raises Exception: the poll's error (every subscriber of the job gets it).
        """
        self.seen = await self.watch.next(self.seen)
        if self.watch.error is not None:
            raise self.watch.error.with_traceback(None)  # shared: no traceback piling up per raise
        return self.watch.result


class JobPoller:
    """The shared hooks and poll loops of one event loop (see the module docstring)."""

    def __init__(self) -> None:
        self.hooks: dict[tuple[str, str, str | None], _SharedHook] = {}
        self.watches: dict[tuple[Any, ...], _Watch] = {}
        self.closing: set[asyncio.Task[None]] = set()

    def _subscribe(self, spec: HookSpec, key: Hashable, poll: Poll, interval: float) -> Subscription:
        watch_key = (spec.key, key)
        watch = self.watches.get(watch_key)
        if watch is None:
            shared = self.hooks.get(spec.key)
            if shared is None:
                shared = self.hooks[spec.key] = _SharedHook(spec)
            shared.users += 1
            watch = self.watches[watch_key] = _Watch(self, watch_key, shared, poll)
        subscription = Subscription(watch)
        watch.join(subscription, interval)
        return subscription

    def _forget(self, watch: _Watch) -> None:
        if self.watches.get(watch.key) is watch:
            del self.watches[watch.key]

    def _ended(self, watch: _Watch) -> None:
        """A poll loop stopped (no subscriber left, or its error): forget it, close an unused hook."""
        self._forget(watch)
        shared = watch.shared
        shared.users -= 1
        if shared.users == 0 and self.hooks.get(shared.spec.key) is shared:
            del self.hooks[shared.spec.key]
            task = asyncio.get_running_loop().create_task(close_sessions(shared.hook))
            self.closing.add(task)
            task.add_done_callback(self.closing.discard)

    @asynccontextmanager
    async def watching(self, spec: HookSpec, polls: Mapping[Hashable, Poll],
                       interval: float) -> AsyncIterator[JobRound]:
        """Subscribe to every status call in ``polls`` for the block; leave them all on exit.

        :param spec: the shared hook to poll through.
        :param polls: watched call key -> the call (equal keys must mean the same call).
        :param interval: seconds between polls this subscriber asks for.
        """
        subscriptions = {key: self._subscribe(spec, key, poll, interval) for key, poll in polls.items()}
        try:
            yield JobRound(subscriptions)
        finally:
            stopped = []
            for subscription in subscriptions.values():
                watch = subscription.watch
                watch.leave(subscription)
                if not watch.subscribers and watch.task is not None and not watch.task.done():
                    stopped.append(watch.task)
            # Let the loops this exit stopped end, and an unused hook close, before the trigger ends.
            if stopped:
                await asyncio.gather(*(asyncio.shield(task) for task in stopped), return_exceptions=True)
            if self.closing:
                await asyncio.gather(*(asyncio.shield(task) for task in list(self.closing)),
                                     return_exceptions=True)


class JobRound:
    """A trigger's subscriptions, read one round at a time."""

    def __init__(self, subscriptions: Mapping[Hashable, Subscription]) -> None:
        self.subscriptions = subscriptions

    async def next(self) -> dict[Hashable, Any]:
        """A newer result of every watched call (call key -> result).

        :raises Exception: the first error of a watched call.
        """
        return {key: await subscription.next() for key, subscription in self.subscriptions.items()}


def out_of_time(started_at: float, timeout: float | None, poll_interval: float) -> float | None:
    """The seconds waited so far when the next result would come after ``timeout`` (give up now), else None.

    :param started_at: epoch seconds the wait began.
    :param timeout: seconds to wait in all (None: no limit).
    :param poll_interval: seconds between polls.
    """
    elapsed = time.time() - started_at
    return elapsed if timeout is not None and elapsed + poll_interval > timeout else None


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, JobPoller] = weakref.WeakKeyDictionary()


def job_poller() -> JobPoller:
    """The running event loop's poller (made on first use)."""
    loop = asyncio.get_running_loop()
    poller = _POLLERS.get(loop)
    if poller is None:
        poller = _POLLERS[loop] = JobPoller()
    return poller
