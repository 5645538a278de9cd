"""A 429's requested wait (``X-Rate-Limit-Reset`` / ``Retry-After``) is honoured up to
``rate_limit_max_wait``, outside the ``retry_max_seconds`` budget; a longer one fails at once, saying so.
Against the emulator's Desk rate limiter (``/__emulator__/desk``), over loopback HTTPS."""

from __future__ import annotations

import time

import pytest

from airflow_provider_salesforce_suite.core.config import DeskConnectionConfig, SalesforceConnectionConfig
from airflow_provider_salesforce_suite.core.errors import SalesforceConfigError, SalesforceRequestLimitError
from airflow_provider_salesforce_suite.core.retry import RetryPolicy
from tests.hooks.desk_support import desk_conn, desk_hook, desk_knob  # noqa: F401 - fixtures


def throttled(knob) -> int:
    return knob.get()["throttled"]


def test_default_cap_covers_desks_minute_window() -> None:
    desk = DeskConnectionConfig(conn_id="d", site_url="https://acme.desk.com", email="a@b.c", password="pw-12345")
    assert desk.rate_limit_max_wait >= 60 and RetryPolicy.from_config(desk).rate_limit_max_wait >= 60
    assert SalesforceConnectionConfig(conn_id="s", session_id="00D!x", instance_url="https://a.my.salesforce.com",
                                      auth_type="session").rate_limit_max_wait >= 60


@pytest.mark.parametrize("extra,reset", [
    ({}, 1),  # defaults: a short reset is waited out
    # a wait longer than retry_max_seconds is waited out too: it used to give up at once (Desk's 60 s
    # reset against the default 60 s budget)
    ({"retry_max_seconds": 1}, 3),
])
def test_reset_within_the_cap_is_waited_out(desk_hook, desk_knob, extra, reset) -> None:
    hook = desk_hook(extra=extra)
    desk_knob.set(window_seconds=reset, throttle_next=1)
    start = time.monotonic()
    assert hook.show("users", 1)["id"] == 1
    assert throttled(desk_knob) == 1 and time.monotonic() - start >= reset - 0.5


def test_reset_beyond_the_cap_fails_at_once_saying_why(desk_hook, desk_knob) -> None:
    hook = desk_hook(extra={"rate_limit_max_wait": 5})
    desk_knob.set(window_seconds=60, throttle_next=1)
    start = time.monotonic()
    with pytest.raises(SalesforceRequestLimitError) as err:
        hook.show("users", 1)
    assert time.monotonic() - start < 5 and throttled(desk_knob) == 1  # one request, no wait
    text = str(err.value)
    assert err.value.status == 429 and "gave up" in text
    assert "asked to wait 60s" in text or "asked to wait 59s" in text
    assert "rate_limit_max_wait of 5s" in text


def test_rate_limit_max_wait_is_validated(desk_conn) -> None:
    from airflow.sdk import BaseHook

    with pytest.raises(SalesforceConfigError, match="rate_limit_max_wait"):
        DeskConnectionConfig.from_connection(BaseHook.get_connection(desk_conn(extra={"rate_limit_max_wait": -1})))
