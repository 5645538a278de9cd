"""Streaming API hook: subscribe to PushTopic, Change Data Capture, platform event and generic
channels over CometD long-polling, with replay, and manage PushTopics.

:meth:`SalesforceStreamingHook.subscribe` is an async iterator of :class:`StreamingEvent`; the CometD
machinery (aiocometd, re-auth, re-handshake, replay without gaps) lives in
:mod:`~airflow_provider_salesforce_suite.hooks._streaming.cometd`. Close the iterator when done
(``async with contextlib.aclosing(hook.subscribe(...)) as events``) so the session is disconnected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping, Sequence

from airflow_provider_salesforce_suite.hooks._streaming.cometd import (
    REPLAY_ALL,
    REPLAY_NEW,
    CometdStream,
    ReplayGapPolicy,
    ReplayState,
    SalesforceReplayGapError,
    SalesforceStreamingError,
    event_replay_id,
    normalize_channels,
    validate_gap_policy,
)
from airflow_provider_salesforce_suite.hooks._streaming.push_topics import PushTopicMixin
from airflow_provider_salesforce_suite.hooks.base import SalesforceBaseHook

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.core.auth import Token

__all__ = [
    "REPLAY_ALL", "REPLAY_NEW", "SalesforceReplayGapError", "SalesforceStreamingError", "SalesforceStreamingHook",
    "StreamingEvent",
]


@dataclass(frozen=True)
class StreamingEvent:
    """One delivered event; JSON-safe through :meth:`to_dict` / :meth:`from_dict`.

    :param channel: the channel it came on (``/topic/X``, ``/data/AccountChangeEvent`` ...).
    :param replay_id: its replay id (resume after it with ``replay_id=<this>``); -1 if the event had none.
    :param payload: Salesforce's ``data`` object as delivered: ``{"event", "sobject"}`` (PushTopic) or
        ``{"schema", "payload", "event"}`` (Change Data Capture, platform events).
    :param created_date: ``event.createdDate`` (PushTopic, generic) or ``payload.CreatedDate``
        (platform events), if present.
    """

    channel: str
    replay_id: int
    payload: dict[str, Any] = field(default_factory=dict)
    created_date: str | None = None

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> StreamingEvent:
        """Build from a Bayeux event message ``{"channel", "data": {...}}``."""
        data = message.get("data")
        data = dict(data) if isinstance(data, Mapping) else {"value": data}
        event = data.get("event") if isinstance(data.get("event"), Mapping) else {}
        body = data.get("payload") if isinstance(data.get("payload"), Mapping) else {}
        replay_id = event_replay_id(message)
        return cls(channel=str(message["channel"]), replay_id=REPLAY_NEW if replay_id is None else replay_id,
                   payload=data, created_date=event.get("createdDate") or body.get("CreatedDate"))

    def to_dict(self) -> dict[str, Any]:
        """``{"channel", "replay_id", "payload", "created_date"}`` (JSON-safe)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> StreamingEvent:
        """Inverse of :meth:`to_dict`.

        :raises ValueError: a missing channel or a non-integer replay id.
        """
        try:
            channel, replay_id = value["channel"], value["replay_id"]
        except (KeyError, TypeError):
            raise ValueError(f"not a StreamingEvent dict: {value!r}") from None
        if not isinstance(channel, str) or isinstance(replay_id, bool) or not isinstance(replay_id, int):
            raise ValueError(f"not a StreamingEvent dict: {value!r}")
        return cls(channel=channel, replay_id=replay_id, payload=dict(value.get("payload") or {}),
                   created_date=value.get("created_date"))


class SalesforceStreamingHook(PushTopicMixin, SalesforceBaseHook):
    """Salesforce Streaming API (CometD): subscriptions with replay, and PushTopic management.

    :param salesforce_conn_id: Airflow connection id of type ``salesforce_suite``.
    :param api_version: overrides the connection's ``api_version`` (the CometD endpoint's version).
    """

    hook_name = "Salesforce Streaming"

    def streaming_url(self) -> str:
        """``{instance}/cometd/{api_version}`` (authenticates on first use)."""
        return self._cometd_url(self.session.token)

    def _cometd_url(self, token: Token) -> str:
        return f"{token.instance_url.rstrip('/')}/cometd/{self.api_version}"

    async def subscribe(self, channels: str | Sequence[str], *, replay_id: int | Mapping[str, int] = REPLAY_NEW,
                        on_replay_gap: ReplayGapPolicy = "fail",
                        connect_timeout: float | None = None) -> AsyncIterator[StreamingEvent]:
        """Yield events of ``channels`` as they arrive, forever (stop iterating to disconnect).

        Long-polling only; the Bearer token comes from the connection's shared authenticator. On
        ``401::Authentication invalid`` the hook re-authenticates once and reconnects; on
        ``403::Unknown client`` or a long poll lost in transit it handshakes again and resubscribes
        from the last delivered replay id, so no event is skipped (one seen twice is dropped).
        Opening a session is retried under the connection's retry policy. A channel started at -1
        that has delivered nothing yet has no position to resume from: it resubscribes with -1.

        :param channels: ``/topic/Name``, ``/data/ChangeEvents``, ``/data/AccountChangeEvent``,
            ``/event/Name__e``, ``/u/Name`` - one or several.
        :param replay_id: -1 (new events only), -2 (every retained event) or a stored replay id to
            resume after; one for all channels or a ``{channel: id}`` map (others: -1).
        :param on_replay_gap: a stored id outside the retention window: ``"fail"`` raises
            :class:`SalesforceReplayGapError` naming id and channel, ``"earliest"`` replays every
            retained event (-2) instead.
        :param connect_timeout: seconds one attempt to open a session (handshake, first connect,
            subscribes) may take (default: the connection's ``connect_timeout``).
        :raises SalesforceReplayGapError: see ``on_replay_gap``.
        :raises SalesforceStreamingError: a refused subscription (e.g. an unknown channel).
        :raises SalesforceTransportError: no session could be opened within the retry policy.
        """
        names = normalize_channels(channels)
        state = ReplayState(names, replay_id)  # validate before reading the connection
        validate_gap_policy(on_replay_gap)
        stream = CometdStream(
            url_for=self._cometd_url, authenticator=self.authenticator, channels=names,
            state=state, on_replay_gap=on_replay_gap,
            ssl=self.async_session()._ssl(), proxy=(self.config.proxies or {}).get("https"),
            policy=self.async_session().policy,
            connect_timeout=float(connect_timeout if connect_timeout is not None else self.config.connect_timeout),
        )
        messages = stream.messages()
        try:
            async for message in messages:
                yield StreamingEvent.from_message(message)
        finally:
            await messages.aclose()
