"""Fixtures for the Desk tests: Desk connections to the emulator and its ``/__emulator__/desk`` knob."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import requests

from airflow_provider_salesforce_suite.emulator.config import DEFAULT_DESK_OAUTH
from airflow_provider_salesforce_suite.hooks.desk import DeskHook

OAUTH1 = {"auth_type": "oauth1", "consumer_key": DEFAULT_DESK_OAUTH.consumer_key,
          "consumer_secret": DEFAULT_DESK_OAUTH.consumer_secret, "access_token": DEFAULT_DESK_OAUTH.access_token,
          "access_token_secret": DEFAULT_DESK_OAUTH.access_token_secret}


@pytest.fixture
def desk_conn(sf_conn) -> Callable[..., str]:
    """``desk_conn(conn_id="desk_emu", **extra_or_fields)`` -> id of a ``salesforce_desk`` connection
    to the emulator (Basic auth as the well-known admin unless told otherwise)."""

    def make(conn_id: str = "desk_emu", *, extra: dict[str, Any] | None = None, **fields: Any) -> str:
        return sf_conn(conn_id, conn_type="salesforce_desk",
                       extra={"max_retries": 3, "retry_max_seconds": 15, **(extra or {})}, **fields)

    return make


@pytest.fixture
def desk_hook(desk_conn) -> Callable[..., DeskHook]:
    """``desk_hook(**extra)`` -> a DeskHook on the emulator."""

    def make(*, extra: dict[str, Any] | None = None, **fields: Any) -> DeskHook:
        return DeskHook(desk_conn(extra=extra, **fields))

    return make


class DeskKnob:
    """The emulator's Desk rate limiter (``GET|POST /__emulator__/desk``)."""

    def __init__(self, server: Any) -> None:
        self.url = server.url + "/__emulator__/desk"
        self.verify = server.ca_bundle

    def set(self, **settings: Any) -> dict[str, Any]:
        return requests.post(self.url, json=settings, verify=self.verify, timeout=10).json()

    def get(self) -> dict[str, Any]:
        return requests.get(self.url, verify=self.verify, timeout=10).json()


@pytest.fixture
def desk_knob(salesforce_emulator_reset) -> DeskKnob:
    """The Desk rate-limit knob of a freshly reset emulator."""
    return DeskKnob(salesforce_emulator_reset)
