"""One channel's replay log: replay ids increasing from 1, a retention window, replay from N."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Builds an event's ``data`` from its replay id and creation time (epoch seconds).
DataBuilder = Callable[[int, float], dict[str, Any]]


class InvalidReplayId(Exception):
    """A subscriber asked to replay from an id outside the retention window."""

    def __init__(self, replay_id: int) -> None:
        super().__init__(replay_id)
        self.replay_id = replay_id


@dataclass
class LoggedEvent:
    """One retained event.

    :param replay_id: its id on the channel.
    :param created_at: epoch seconds when it was published.
    :param data: the Bayeux message's ``data``.
    :param user_ids: deliver only to sessions of these users (generic streaming); empty: everyone.
    :param wire: the event in other wire formats, made once on first delivery (the Pub/Sub API's
        Avro payload), whatever the number of subscribers.
    """

    replay_id: int
    created_at: float
    data: dict[str, Any]
    user_ids: frozenset[str] = field(default_factory=frozenset)
    wire: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class ReplayLog:
    """Events of one channel kept for ``retention_seconds`` (at most ``max_events``).

    :param retention_seconds: how long an event stays replayable.
    :param max_events: the log's bound; the oldest event ages out first.
    """

    def __init__(self, retention_seconds: float, max_events: int) -> None:
        self.retention_seconds = retention_seconds
        self.max_events = max_events
        self.last_id = 0
        self._events: deque[LoggedEvent] = deque()

    def append(self, build: DataBuilder, user_ids: frozenset[str] = frozenset()) -> LoggedEvent:
        """Log a new event with the next replay id.

        :param build: makes the event's data from its replay id and creation time.
        :param user_ids: restrict delivery to these users.
        """
        now = time.time()
        self.last_id += 1
        event = LoggedEvent(self.last_id, now, build(self.last_id, now), user_ids)
        self._events.append(event)
        while len(self._events) > self.max_events:
            self._events.popleft()
        self.expire(now)
        return event

    def expire(self, now: float | None = None) -> None:
        """Drop events older than the retention window.

        :param now: epoch seconds (default: now).
        """
        horizon = (time.time() if now is None else now) - self.retention_seconds
        while self._events and self._events[0].created_at <= horizon:
            self._events.popleft()

    def replay(self, replay_id: int) -> list[LoggedEvent]:
        """The events a subscription starting at ``replay_id`` receives first.

        ``-1``: none (new events only); ``-2``: every retained event; ``N``: the events after N,
        which must be within the window (the event right before the oldest retained one counts,
        so a subscriber that saw it misses nothing).

        :param replay_id: -1, -2 or a replay id.
        :raises InvalidReplayId: N is outside the retention window.
        """
        self.expire()
        if replay_id == -1:
            return []
        if replay_id == -2:
            return list(self._events)
        oldest = self._events[0].replay_id if self._events else self.last_id + 1
        if replay_id < oldest - 1 or replay_id > self.last_id:
            raise InvalidReplayId(replay_id)
        return [e for e in self._events if e.replay_id > replay_id]

    @property
    def oldest_id(self) -> int:
        """The oldest retained replay id (``last_id + 1`` when nothing is retained)."""
        self.expire()
        return self._events[0].replay_id if self._events else self.last_id + 1

    def after(self, replay_id: int, limit: int) -> list[LoggedEvent]:
        """Up to ``limit`` retained events with ids above ``replay_id``, oldest first.

        Ids in the log are consecutive, so this indexes instead of scanning.

        :param replay_id: the last id the reader has.
        :param limit: how many at most.
        """
        if limit <= 0 or not self._events:
            return []
        start = max(0, replay_id - self._events[0].replay_id + 1)
        stop = min(len(self._events), start + limit)
        return [self._events[i] for i in range(start, stop)]

    def age_out(self, count: int | None = None, seconds: float | None = None) -> int:
        """Test knob: drop the ``count`` oldest events, or make every event ``seconds`` older.

        :param count: how many of the oldest events to drop.
        :param seconds: shift every event's creation time back by this much (then expire).
        :returns: how many events were dropped.
        """
        before = len(self._events)
        if count is not None:
            for _ in range(min(count, len(self._events))):
                self._events.popleft()
        if seconds is not None:
            for event in self._events:
                event.created_at -= seconds
            self.expire()
        return before - len(self._events)

    def summary(self) -> dict[str, Any]:
        """The log as the admin API shows it."""
        self.expire()
        return {
            "last_replay_id": self.last_id,
            "oldest_replay_id": self._events[0].replay_id if self._events else None,
            "retained": len(self._events),
            "retention_seconds": self.retention_seconds,
        }
