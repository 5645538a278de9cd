"""Helpers shared by the Bulk hook tests."""

from __future__ import annotations

import csv
from contextlib import contextmanager
from typing import Any, Iterator

import requests

from airflow_provider_salesforce_suite.hooks.bulk import SalesforceBulkHook

FAST = {"poll_interval": 0.02}


def bulk_settings(admin: Any, **settings: Any) -> dict:
    """``POST /__emulator__/bulk`` (``min_in_progress_seconds``, ``fail_next_job``)."""
    reply = requests.post(f"{admin.url}/__emulator__/bulk", json=settings, verify=admin.verify, timeout=10)
    reply.raise_for_status()
    return reply.json()


def read_csv(path: str) -> list[dict[str, str]]:
    with open(str(path).removeprefix("file://"), newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def count(hook: SalesforceBulkHook, soql: str) -> int:
    return hook.request("GET", hook.data_url("query"), params={"q": soql}).json()["totalSize"]


def calls(admin: Any, method: str, fragment: str) -> int:
    return sum(n for key, n in admin.stats()["requests"].items() if key.startswith(method + " ") and fragment in key)


def _serve(queue: Any, stop: Any, tls_dir: str) -> None:
    from airflow_provider_salesforce_suite.emulator.server import EmulatorServer

    server = EmulatorServer(cert_dir=tls_dir).start()
    queue.put(server.connection_json())
    stop.wait(600)
    server.stop()


@contextmanager
def emulator_process(tls_dir: str) -> Iterator[str]:
    """An emulator in a child process (so a memory measurement of this process sees only the
    client); yields its connection JSON."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(queue, stop, tls_dir), daemon=True)
    process.start()
    try:
        yield queue.get(timeout=120)
    finally:
        stop.set()
        process.join(30)
        if process.is_alive():
            process.terminate()
