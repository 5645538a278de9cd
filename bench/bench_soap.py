"""SOAP (partner API): query 50,000 rows through queryMore and create 10,000 records with
``SalesforceSoapHook``, against the floor of the same envelopes posted by a bare ``requests``
session (hand-built XML, only the query locator read back), each client built in the clock (the
hook's parsed WSDL and token are process-wide caches, warmed in its setup); and the cost of building the zeep
client the first time in a process (imports + WSDL parse) and after (parsed WSDL cached).
"""

from __future__ import annotations

import re
import time
from typing import Any

from bench.bench_rest_transport import VERSION, _token
from bench.rest_support import chunks, collections_insert, count, reset_api_usage
from bench.runner import BenchEnv, Case

GROUP = "SOAP partner API: query 50,000 rows (queryMore, batch 2000), create 10,000 (200 per call)"
ROWS = 50_000
CREATES = 10_000
SOQL = "SELECT Id, FirstName, LastName, Email, Title FROM Contact WHERE Title = 'SOAP bench'"
ENVELOPE = ('<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns:p="urn:partner.soap.sforce.com" xmlns:s="urn:sobject.partner.soap.sforce.com"><env:Header>'
            '<p:SessionHeader><p:sessionId>{sid}</p:sessionId></p:SessionHeader>{extra}</env:Header>'
            "<env:Body>{body}</env:Body></env:Envelope>")
_LOCATOR = re.compile(rb"<(?:\w+:)?queryLocator>([^<]+)</")


def _seed(env: BenchEnv) -> None:
    reset_api_usage(env)
    have = count(env, "SELECT COUNT() FROM Contact WHERE Title = 'SOAP bench'")
    rows = ({"FirstName": f"F{n}", "LastName": f"L{n:06d}", "Email": f"s{n}@example.com", "Title": "SOAP bench"}
            for n in range(have, ROWS))
    collections_insert(env, "Contact", rows, concurrency=4)


def _setup_hook(env: BenchEnv) -> dict[str, Any]:
    _seed(env)
    from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

    SalesforceSoapHook().get_server_timestamp()  # imports, the parsed WSDL and the token (process-wide caches)
    return {}


def hook_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

    rows = sum(1 for _ in SalesforceSoapHook().query(SOQL, batch_size=2000))
    assert rows == ROWS, rows
    return {"rows": rows}


def hook_create(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

    results = SalesforceSoapHook().create({"type": "Account", "Name": f"SOAP bench {n}"} for n in range(CREATES))
    assert len(results) == CREATES and all(r["success"] for r in results)
    return {"rows": CREATES}


def _setup_bare(env: BenchEnv) -> dict[str, Any]:
    import requests  # noqa: F401  (imported before the clock)

    _seed(env)
    token, instance = _token(env)
    return {"url": f"{instance}/services/Soap/u/{VERSION}", "sid": token}


def _bare_client(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    import requests

    session = requests.Session()
    session.verify = env.ca_bundle or True
    session.headers.update({"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
    return {**prepared, "session": session}


def _post(prepared: dict[str, Any], body: str, extra: str = "") -> bytes:
    reply = prepared["session"].post(prepared["url"], timeout=300,
                                     data=ENVELOPE.format(sid=prepared["sid"], extra=extra, body=body).encode())
    reply.raise_for_status()
    return reply.content


def bare_query(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    prepared = _bare_client(env, prepared)
    options = "<p:QueryOptions><p:batchSize>2000</p:batchSize></p:QueryOptions>"
    content = _post(prepared, f"<p:query><p:queryString>{SOQL}</p:queryString></p:query>", options)
    rows = content.count(b"<records")
    while (locator := _LOCATOR.search(content)) is not None:
        content = _post(prepared, f"<p:queryMore><p:queryLocator>{locator.group(1).decode()}</p:queryLocator>"
                                  "</p:queryMore>", options)
        rows += content.count(b"<records")
    assert rows == ROWS, rows
    return {"rows": rows}


def bare_create(env: BenchEnv, prepared: dict[str, Any]) -> dict[str, Any]:
    prepared = _bare_client(env, prepared)
    for chunk in chunks(range(CREATES)):
        records = "".join(f"<p:sObjects><s:type>Account</s:type><s:Name>SOAP bench {n}</s:Name></p:sObjects>"
                          for n in chunk)
        content = _post(prepared, f"<p:create>{records}</p:create>")
        assert content.count(b"success>true<") == len(chunk)
    return {"rows": CREATES}


def client_first_build(env: BenchEnv) -> dict[str, Any]:
    import requests

    start = time.perf_counter()
    from airflow_provider_salesforce_suite.hooks._soap.client import build_client

    build_client(requests.Session(), "https://example.invalid/services/Soap/u/64.0")
    return {"build ms": round((time.perf_counter() - start) * 1000, 1)}


def client_later_builds(env: BenchEnv) -> dict[str, Any]:
    import requests

    from airflow_provider_salesforce_suite.hooks._soap.client import build_client

    build_client(requests.Session(), "https://example.invalid/services/Soap/u/64.0")
    start = time.perf_counter()
    for _ in range(100):
        build_client(requests.Session(), "https://example.invalid/services/Soap/u/64.0")
    return {"build ms": round((time.perf_counter() - start) * 10, 2)}


CASES = [
    Case("bare requests: query 50k (same envelopes)", bare_query, {}, _setup_bare, floor=True, job="query 50k"),
    Case("SalesforceSoapHook.query 50k", hook_query, {}, _setup_hook, job="query 50k"),
    Case("bare requests: create 10k (same envelopes)", bare_create, {}, _setup_bare, floor=True, job="create 10k"),
    Case("SalesforceSoapHook.create 10k", hook_create, {}, _setup_hook, job="create 10k"),
    Case("zeep client, first build in a process", client_first_build, job="client build"),
    Case("zeep client, later builds (each)", client_later_builds, job="client build"),
]
