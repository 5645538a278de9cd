"""Helpers shared by the REST benchmarks: an authenticated bare session, seeding, request counts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, Iterable, Iterator

import requests

from bench.bench_rest_transport import VERSION, _token
from bench.runner import BenchEnv


def token(env: BenchEnv) -> tuple[str, str]:
    """An access token and instance URL (the OAuth password grant), for a setup to hand to a run."""
    return _token(env)


def bare_session(env: BenchEnv, pool: int = 10, token: tuple[str, str] | None = None) -> tuple[requests.Session, str]:
    """A plain ``requests.Session`` with a bearer token; returns it and the data URL prefix.

    :param env: the benchmark environment.
    :param pool: connections kept per host.
    :param token: ``(access token, instance URL)`` got before the clock; a new grant when omitted.
    """
    token, instance = token or _token(env)
    session = requests.Session()
    session.verify = env.ca_bundle or True
    session.headers["Authorization"] = f"Bearer {token}"
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool)
    session.mount("https://", adapter)
    return session, f"{instance}/services/data/v{VERSION}"


def requests_total(env: BenchEnv) -> int:
    """The emulator's count of API requests served (its control API is not counted)."""
    reply = requests.get(f"{env.url}/__emulator__/stats", verify=env.ca_bundle or True, timeout=10)
    reply.raise_for_status()
    return reply.json()["requests_total"]


def chunks(rows: Iterable[Any], size: int = 200) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def collections_insert(env: BenchEnv, sobject: str, rows: Iterable[dict[str, Any]], concurrency: int = 4) -> list[str]:
    """Insert rows through sObject Collections (200 per call, ``concurrency`` calls at once)."""
    session, data = bare_session(env, concurrency)

    def send(chunk: list[dict[str, Any]]) -> list[str]:
        body = {"allOrNone": True, "records": [{"attributes": {"type": sobject}, **row} for row in chunk]}
        reply = session.post(f"{data}/composite/sobjects", json=body, timeout=300)
        reply.raise_for_status()
        return [result["id"] for result in reply.json()]

    with ThreadPoolExecutor(concurrency) as pool:
        return [record_id for ids in pool.map(send, chunks(rows)) for record_id in ids]


def count(env: BenchEnv, soql: str) -> int:
    session, data = bare_session(env)
    reply = session.get(f"{data}/query", params={"q": soql}, timeout=120)
    reply.raise_for_status()
    return reply.json()["totalSize"]


def reset_api_usage(env: BenchEnv) -> None:
    """Give the org a fresh daily API allowance (data, sessions and stats are kept)."""
    reply = requests.post(f"{env.url}/__emulator__/reset", json={"data": False, "faults": False, "stats": False,
                                                                 "sessions": False, "api_usage": True},
                          verify=env.ca_bundle or True, timeout=30)
    reply.raise_for_status()
