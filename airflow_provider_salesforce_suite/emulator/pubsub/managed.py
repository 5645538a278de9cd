"""Managed subscriptions (``ManagedEventSubscription``): a named subscription to one topic whose
committed replay id Salesforce keeps, so a client resumes where its last commit left off.

Created through ``POST /__emulator__/pubsub/managed-subscriptions`` (the Tooling/Metadata API
object is not emulated); commits are readable at ``GET .../managed-subscriptions/{id}``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from ..ids import to_18
from .wire import (
    MANAGED_ALREADY_ACTIVE,
    MANAGED_ID_INVALID,
    MANAGED_ID_NOT_FOUND,
    MANAGED_ID_OR_NAME,
    MANAGED_NAME_NOT_FOUND,
    MANAGED_STOPPED,
    PubSubFault,
)

#: The key prefix of ManagedEventSubscription ids.
KEY_PREFIX = "18x"
REPLAY_PRESETS = ("LATEST", "EARLIEST")


@dataclass
class Commit:
    """One commit as the server recorded it.

    :param commit_request_id: the client's id for the request.
    :param replay_id: the committed integer replay id (``None``: refused).
    :param error: why it was refused.
    :param process_time: epoch ms the server handled it.
    """

    commit_request_id: str
    replay_id: int | None
    error: str | None
    process_time: int

    def to_json(self) -> dict[str, Any]:
        """The commit as the admin API shows it."""
        return {"commit_request_id": self.commit_request_id, "replay_id": self.replay_id,
                "error": self.error, "process_time": self.process_time}


@dataclass
class ManagedSubscription:
    """One managed subscription.

    :param id: its 18-character id (``18x...``).
    :param developer_name: its API name.
    :param topic: the topic it reads.
    :param state: ``RUN`` or ``STOP`` (a stopped subscription refuses ManagedSubscribe).
    :param default_replay: where a subscription without a commit starts (``LATEST``/``EARLIEST``).
    :param label: its label (the Tooling API's ``Metadata.label``).
    :param error_recovery_replay: kept for the Tooling API's ``Metadata.errorRecoveryReplay``.
    """

    id: str
    developer_name: str
    topic: str
    state: str = "RUN"
    default_replay: str = "LATEST"
    label: str = ""
    error_recovery_replay: str = "LATEST"
    committed: int | None = None
    commits: list[Commit] = field(default_factory=list)
    active: bool = False

    def metadata(self) -> dict[str, Any]:
        """The Tooling API's ``Metadata`` of the ``ManagedEventSubscription`` record."""
        return {"label": self.label or self.developer_name, "topicName": self.topic,
                "defaultReplay": self.default_replay, "state": self.state,
                "errorRecoveryReplay": self.error_recovery_replay}

    def to_json(self) -> dict[str, Any]:
        """The subscription as the admin API shows it."""
        return {"id": self.id, "developer_name": self.developer_name, "topic": self.topic, "state": self.state,
                "default_replay": self.default_replay, "committed_replay_id": self.committed,
                "active": self.active, "commits": [c.to_json() for c in self.commits]}

    def record(self, request_id: str, replay_id: int | None, error: str | None) -> Commit:
        """Remember a commit (an accepted one moves the committed replay id).

        :param request_id: the client's commit request id.
        :param replay_id: the replay id (``None`` when it could not be read).
        :param error: why it was refused (``None``: accepted).
        """
        commit = Commit(request_id, replay_id if error is None else None, error, int(time.time() * 1000))
        if error is None:
            self.committed = replay_id
        self.commits.append(commit)
        return commit


class ManagedSubscriptions:
    """The org's managed subscriptions."""

    def __init__(self) -> None:
        self._by_id: dict[str, ManagedSubscription] = {}
        self._numbers = itertools.count(1)

    def create(self, developer_name: str, topic: str, *, state: str = "RUN", default_replay: str = "LATEST",
               label: str = "", error_recovery_replay: str = "LATEST") -> ManagedSubscription:
        """Add a subscription (the topic is checked by the caller).

        :param developer_name: a unique API name.
        :param topic: the topic.
        :param state: ``RUN`` or ``STOP``.
        :param default_replay: ``LATEST`` or ``EARLIEST``.
        :param label: its label.
        :param error_recovery_replay: ``LATEST`` or ``EARLIEST``.
        :raises ValueError: a bad or duplicate name, state or preset.
        """
        if not developer_name or not developer_name.replace("_", "").isalnum():
            raise ValueError(f"developer_name must be an API name, got {developer_name!r}")
        if any(s.developer_name.lower() == developer_name.lower() for s in self._by_id.values()):
            raise ValueError(f"a managed subscription named {developer_name} exists")
        if state not in ("RUN", "STOP"):
            raise ValueError("state must be RUN or STOP")
        if default_replay not in REPLAY_PRESETS or error_recovery_replay not in REPLAY_PRESETS:
            raise ValueError("defaultReplay and errorRecoveryReplay must be LATEST or EARLIEST")
        sub_id = to_18(f"{KEY_PREFIX}{next(self._numbers):012d}")
        sub = self._by_id[sub_id] = ManagedSubscription(sub_id, developer_name, topic, state, default_replay,
                                                         label, error_recovery_replay)
        return sub

    def delete(self, sub: ManagedSubscription) -> None:
        """Remove a subscription.

        :param sub: the subscription.
        """
        self._by_id.pop(sub.id, None)

    def all(self) -> list[ManagedSubscription]:
        """Every subscription, oldest first."""
        return list(self._by_id.values())

    def get(self, key: str) -> ManagedSubscription | None:
        """A subscription by 15/18-character id or developer name.

        :param key: id or name.
        """
        for sub in self._by_id.values():
            if key in (sub.id, sub.id[:15]) or key.lower() == sub.developer_name.lower():
                return sub
        return None

    def clear(self) -> None:
        """Forget every subscription (a data reset)."""
        self._by_id.clear()

    def find(self, subscription_id: str, developer_name: str) -> ManagedSubscription:
        """The subscription a ``ManagedSubscribe`` stream names, if it can be opened now.

        :param subscription_id: the first request's ``subscription_id``.
        :param developer_name: its ``developer_name``.
        :raises PubSubFault: neither or both given, unknown, stopped or already active.
        """
        if bool(subscription_id) == bool(developer_name):
            raise PubSubFault("INVALID_ARGUMENT", MANAGED_ID_OR_NAME,
                              "Provide either a subscription ID or a developer name, not both.")
        if subscription_id:
            if len(subscription_id) not in (15, 18):
                raise PubSubFault("INVALID_ARGUMENT", MANAGED_ID_INVALID,
                                  f"The subscription ID {subscription_id} must be 15 or 18 characters.")
            sub = self.get(subscription_id)
            if sub is None:
                raise PubSubFault("NOT_FOUND", MANAGED_ID_NOT_FOUND,
                                  f"No managed subscription has the ID {subscription_id}.")
        else:
            sub = self.get(developer_name)
            if sub is None:
                raise PubSubFault("NOT_FOUND", MANAGED_NAME_NOT_FOUND,
                                  f"No managed subscription has the developer name {developer_name}.")
        if sub.state != "RUN":
            raise PubSubFault("FAILED_PRECONDITION", MANAGED_STOPPED,
                              f"The managed subscription {sub.developer_name} is stopped.")
        if sub.active:
            raise PubSubFault("FAILED_PRECONDITION", MANAGED_ALREADY_ACTIVE,
                              f"The managed subscription {sub.developer_name} already has an active stream.")
        return sub
