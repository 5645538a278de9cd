"""Per-call overhead of the shared auth/transport layer on a REST record read.

Baseline: a bare ``requests.Session`` with a token (the floor). Then ``SalesforceRestHook.get``
(our session: auth header, limit parsing, retry policy, error mapping) and simple-salesforce used
directly with the same token.
"""

from __future__ import annotations

from typing import Any

import requests

from bench.runner import BenchEnv, Case

GROUP = "REST transport: 300 sequential record reads (emulator, loopback)"
CALLS = 300
VERSION = "64.0"


def _token(env: BenchEnv) -> tuple[str, str]:
    reply = requests.post(
        f"{env.url}/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": "emulator",
            "client_secret": "emulator",
            "username": "admin@emulator.local",
            "password": "emulator",
        },
        verify=env.ca_bundle or True,
        timeout=10,
    )
    reply.raise_for_status()
    body = reply.json()
    return body["access_token"], body["instance_url"]


def _prepare(env: BenchEnv) -> dict[str, Any]:
    token, instance = _token(env)
    created = requests.post(
        f"{instance}/services/data/v{VERSION}/sobjects/Account/",
        json={"Name": "Bench account"},
        headers={"Authorization": f"Bearer {token}"},
        verify=env.ca_bundle or True,
        timeout=10,
    )
    created.raise_for_status()
    return {"token": token, "instance": instance, "id": created.json()["id"]}


def _get_url(prepared: dict[str, Any]) -> str:
    return f"{prepared['instance']}/services/data/v{VERSION}/sobjects/Account/{prepared['id']}"


# Each setup builds and warms up its client (imports, TLS handshake, authentication) before the
# clock starts, so the timed loop compares the per-call cost only.
def _setup_bare(env: BenchEnv) -> dict[str, Any]:
    prepared = _prepare(env)
    session = requests.Session()
    session.verify = env.ca_bundle or True
    session.headers["Authorization"] = f"Bearer {prepared['token']}"
    session.get(_get_url(prepared), timeout=30).raise_for_status()
    return {**prepared, "client": session}


def _setup_hook(env: BenchEnv) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    prepared = _prepare(env)
    hook = SalesforceRestHook()
    hook.get("Account", prepared["id"])
    return {**prepared, "client": hook}


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    from simple_salesforce import Salesforce

    prepared = _prepare(env)
    session = requests.Session()
    session.verify = env.ca_bundle or True
    sf = Salesforce(instance_url=prepared["instance"], session_id=prepared["token"], version=VERSION, session=session)
    sf.Account.get(prepared["id"])
    return {**prepared, "client": sf}


def bare_requests(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, url = prepared["client"], _get_url(prepared)
    for _ in range(CALLS):
        session.get(url, timeout=30).raise_for_status()
    return {"calls": CALLS}


def rest_hook(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    hook = prepared["client"]
    for _ in range(CALLS):
        hook.get("Account", prepared["id"])
    return {"calls": CALLS}


def simple_salesforce_direct(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    sf = prepared["client"]
    for _ in range(CALLS):
        sf.Account.get(prepared["id"])
    return {"calls": CALLS}


CASES = [
    Case("bare requests (floor)", bare_requests, setup=_setup_bare),
    Case("SalesforceRestHook.get", rest_hook, setup=_setup_hook),
    Case("simple-salesforce direct", simple_salesforce_direct, setup=_setup_simple_salesforce),
]
