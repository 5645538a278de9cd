"""The long-lived calls (``Subscribe``, ``ManagedSubscribe``, ``PublishStream``): one call as a
:class:`Duplex` (a writer and a reader task the hook owns), and :class:`Reconnects`, which decides
how the next call starts after one broke (a fresh token once, else a bounded backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Callable

from airflow_provider_salesforce_suite.core.errors import SalesforcePubSubError
from airflow_provider_salesforce_suite.hooks._pubsub.channel import backoff_delay

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.core.auth import Token
    from airflow_provider_salesforce_suite.hooks._pubsub.channel import PubSubChannel

log = logging.getLogger(__name__)


class StreamBroken(Exception):
    """A long-lived call ended in a way a new call can fix.

    :param reason: for logs.
    :param reauthenticate: the ``UNAUTHENTICATED`` error, when a fresh token is what the new call needs.
    """

    def __init__(self, reason: str, *, reauthenticate: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reauthenticate = reauthenticate


class Reconnects:
    """The token of a long-lived call's next attempt, and when to make it: at once with a fresh token
    after ``UNAUTHENTICATED`` (once per working call), else after a bounded backoff; a call that
    keeps breaking before it delivers anything raises.

    :param channel: the hook's channel.
    :param what: the call in the user's words.
    :param token: the token of the first attempt.
    """

    def __init__(self, channel: PubSubChannel, what: str, token: Token) -> None:
        self.channel = channel
        self.what = what
        self.token = token
        self.failures = 0
        self.reauthenticated = False

    def worked(self) -> None:
        """The call delivered something: later trouble starts afresh."""
        self.failures, self.reauthenticated = 0, False

    async def after(self, broken: StreamBroken, next_step: str) -> None:
        """Wait (or re-authenticate) before the next attempt.

        :param broken: why the call ended.
        :param next_step: what the next call will do, for the log.
        :raises SalesforcePubSubError: too many broken calls in a row (or a fresh token rejected).
        """
        if broken.reauthenticate is not None:
            self.token = await self.channel.reauthenticate(self.token, self.reauthenticated, broken.reauthenticate,
                                                           self.what)
            self.reauthenticated = True
            return
        policy = self.channel.policy
        self.failures += 1
        if self.failures > policy.max_retries:
            raise SalesforcePubSubError(
                f"Salesforce Pub/Sub {self.what} kept failing ({broken.reason}; {self.failures} calls in a row "
                "without an answer)", grpc_code="UNAVAILABLE") from None
        delay = backoff_delay(policy, self.failures)
        log.warning("Pub/Sub %s: %s; %s in %.2fs (attempt %d of %d)", self.what, broken.reason, next_step, delay,
                    self.failures, policy.max_retries)
        await asyncio.sleep(delay)


#: What :meth:`Duplex.next` returns when the server ended the stream (status OK).
STREAM_END = object()


class Duplex:
    """One bidirectional call driven by two tasks it owns: a writer sending queued requests (in order)
    and a reader queueing responses, so answers (commits, publish results) arrive while the caller is
    busy. Both tasks end with :meth:`close`; nothing of the call outlives it.

    :param stub: the ``PubSubStub``.
    :param rpc: ``Subscribe``, ``ManagedSubscribe`` or ``PublishStream``.
    :param metadata: the call's metadata.
    :param on_response: called in the reader for each response, before it is queued.
    """

    def __init__(self, stub: Any, rpc: str, metadata: Any, on_response: Callable[[Any], None] | None = None) -> None:
        self.call = getattr(stub, rpc)(metadata=metadata)
        self._requests: asyncio.Queue[Any] = asyncio.Queue()
        self._responses: asyncio.Queue[Any] = asyncio.Queue()
        self._on_response = on_response
        self._tasks = [asyncio.ensure_future(self._write()), asyncio.ensure_future(self._read())]

    def send(self, request: Any) -> None:
        """Queue ``request`` (sent after the ones before it)."""
        self._requests.put_nowait(request)

    async def next(self, timeout: float | None) -> Any:
        """The next response, :data:`STREAM_END`, or the exception that ended the call.

        :raises asyncio.TimeoutError: nothing within ``timeout`` seconds.
        """
        return await asyncio.wait_for(self._responses.get(), timeout)

    async def _write(self) -> None:
        try:
            while True:
                await self.call.write(await self._requests.get())
        except asyncio.CancelledError:
            raise
        except Exception:  # the call is over: the reader reports how it ended
            return

    async def _read(self) -> None:
        import grpc

        try:
            while True:
                response = await self.call.read()
                if response is grpc.aio.EOF:
                    self._responses.put_nowait(STREAM_END)
                    return
                if self._on_response is not None:
                    self._on_response(response)
                self._responses.put_nowait(response)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # AioRpcError (the call's status), or a broken channel
            self._responses.put_nowait(exc)

    async def close(self) -> None:
        """Cancel the call and end both tasks."""
        self.call.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
