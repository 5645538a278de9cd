"""The one-shot wait behind the deferrable event triggers (CometD's and Pub/Sub's): subscribe,
collect ``event_count`` matching events or give up at the deadline, and report once.

Pure Python over any async iterator of events; the caller opens the subscription and closes its hook.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Any

from airflow_provider_salesforce_suite.triggers._filters import compile_event_filter

STATUS_SUCCESS, STATUS_TIMEOUT, STATUS_ERROR = "success", "timeout", "error"


def validate_wait(event_count: Any, timeout: Any) -> tuple[int, float | None]:
    """Check how many events to wait for and for how long.

    :param event_count: an int >= 1.
    :param timeout: positive seconds, or None for no limit.
    :raises ValueError: naming the bad value.
    """
    if isinstance(event_count, bool) or not isinstance(event_count, int) or event_count < 1:
        raise ValueError(f"event_count must be an int >= 1, got {event_count!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return event_count, None if timeout is None else float(timeout)


async def wait_for_events(subscribe: Callable[[], AsyncIterator[Any]], *, source: str, event_count: int,
                          filter: Mapping[str, Any] | None,  # noqa: A002 - the triggers' public name
                          timeout: float | None, started_at: float, last_replay_id: Any,
                          replay_id_of: Callable[[Any], Any], close: Callable[[], Awaitable[None]],
                          dedupe: bool = False) -> dict[str, Any]:
    """Collect matching events; the trigger's one payload
    ``{"status", "events" (their to_dict()), "last_replay_id", "message"}``.

    :param subscribe: opens the subscription (an async iterator of events with ``to_dict()``).
    :param source: the channel or topic, for messages.
    :param event_count: how many matching events to wait for.
    :param filter: the declarative filter (see ``_filters``), or None.
    :param timeout: seconds from ``started_at`` (None: no limit); a restarted trigger keeps its deadline.
    :param started_at: epoch seconds the wait began.
    :param last_replay_id: reported when no event arrives (the start id).
    :param replay_id_of: an event's replay id as reported (JSON-safe).
    :param close: releases the hook's resources (always awaited).
    :param dedupe: skip an event whose replay id was already collected (a replay after a gap).
    """
    matches = compile_event_filter(filter)
    events: list[dict[str, Any]] = []
    seen: set[Any] = set()
    remaining = None if timeout is None else timeout - (time.time() - started_at)
    status, message = STATUS_SUCCESS, None
    try:
        if remaining is not None and remaining <= 0:
            raise TimeoutError
        async with asyncio.timeout(remaining):
            async with aclosing(subscribe()) as stream:
                async for event in stream:
                    last_replay_id = replay_id_of(event)
                    if dedupe and last_replay_id in seen:
                        continue
                    if matches(event):
                        seen.add(last_replay_id)
                        events.append(event.to_dict())
                        if len(events) >= event_count:
                            break
            if len(events) < event_count:
                raise RuntimeError(f"the subscription to {source} ended after {len(events)} event(s)")
    except TimeoutError:
        status = STATUS_TIMEOUT
        message = (f"{len(events)} of {event_count} event(s) on {source} after "
                   f"{time.time() - started_at:.1f}s (timeout {timeout:g}s)")
    except Exception as exc:  # the task decides; the event carries the text, never the object
        status, message = STATUS_ERROR, f"{type(exc).__name__}: {exc}"
    finally:
        await close()
    return {"status": status, "events": events, "last_replay_id": last_replay_id, "message": message}
