"""Streaming API internals: the CometD session runner and PushTopic management."""
