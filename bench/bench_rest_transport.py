"""Per-call overhead of the shared auth/transport layer on a REST record read.

The floor: the best per round of a bare ``requests.Session`` and a bare ``http.client`` keep-alive
connection, each with the token. Then ``SalesforceRestHook.get`` (our session: auth header, limit
parsing, retry policy, error mapping) and simple-salesforce used directly with the same token. Every
client is built inside the clock (one TLS handshake each); imports and the token come before.
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


# Setups do the imports and get the token before the clock; each run builds its client (one TLS
# handshake) and makes the calls, so the table compares the layers' per-call cost.
def _setup_bare(env: BenchEnv) -> dict[str, Any]:
    import requests  # noqa: F401  (imported before the clock)

    return _prepare(env)


def _setup_http_client(env: BenchEnv) -> dict[str, Any]:
    import http.client  # noqa: F401
    import ssl  # noqa: F401

    return _prepare(env)


def _setup_hook(env: BenchEnv) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    prepared = _prepare(env)
    SalesforceRestHook().get("Account", prepared["id"])  # imports and the process-wide token cache
    return prepared


def _setup_simple_salesforce(env: BenchEnv) -> dict[str, Any]:
    import simple_salesforce  # noqa: F401

    return _prepare(env)


def bare_requests(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    session, url = requests.Session(), _get_url(prepared)
    session.verify = env.ca_bundle or True
    session.headers["Authorization"] = f"Bearer {prepared['token']}"
    for _ in range(CALLS):
        session.get(url, timeout=30).raise_for_status()
    return {"calls": CALLS}


def bare_http_client(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    """The standard library's keep-alive connection: no session layer at all."""
    import http.client
    import ssl
    from urllib.parse import urlsplit

    url = urlsplit(_get_url(prepared))
    context = ssl.create_default_context(cafile=env.ca_bundle) if env.ca_bundle else ssl.create_default_context()
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=30)
    headers = {"Authorization": f"Bearer {prepared['token']}", "Accept": "application/json"}
    for _ in range(CALLS):
        connection.request("GET", url.path, headers=headers)
        reply = connection.getresponse()
        reply.read()
        assert reply.status == 200, reply.status
    connection.close()
    return {"calls": CALLS}


def rest_hook(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

    hook = SalesforceRestHook()
    for _ in range(CALLS):
        hook.get("Account", prepared["id"])
    return {"calls": CALLS}


def simple_salesforce_direct(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from simple_salesforce import Salesforce

    session = requests.Session()
    session.verify = env.ca_bundle or True
    sf = Salesforce(instance_url=prepared["instance"], session_id=prepared["token"], version=VERSION, session=session)
    for _ in range(CALLS):
        sf.Account.get(prepared["id"])
    return {"calls": CALLS}


CASES = [
    Case("floor candidate: bare requests.Session", bare_requests, setup=_setup_bare, floor=True),
    Case("floor candidate: bare http.client keep-alive", bare_http_client, setup=_setup_http_client, floor=True),
    Case("SalesforceRestHook.get", rest_hook, setup=_setup_hook),
    Case("simple-salesforce direct", simple_salesforce_direct, setup=_setup_simple_salesforce),
]
