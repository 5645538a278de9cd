"""The Streaming API (CometD/Bayeux long-polling at ``/cometd/XX.X``): PushTopic, Change Data
Capture, platform event and generic streaming channels over the one store's change listeners."""

from __future__ import annotations
