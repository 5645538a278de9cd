"""The org a contract test talks to: the emulator by default, a real org or sandbox under
``make test-live``. Tests create their own records (names carry a per-test prefix) and the
teardown removes them, also after a failure, so a live run leaves the org as it found it."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from airflow_provider_salesforce_suite.hooks.rest import SalesforceRestHook

log = logging.getLogger(__name__)

#: Set by ``make test-live``: run against the connection named by ``SF_LIVE_CONN_ID``.
TARGET_ENV = "SF_CONTRACT_TARGET"
LIVE_CONN_ENV = "SF_LIVE_CONN_ID"
#: A ``salesforce_pardot`` connection for the Pardot contract test (live runs only).
LIVE_PARDOT_CONN_ENV = "SF_LIVE_PARDOT_CONN_ID"
#: Opt-in for the wrong-password login on a live org (a failed login counts towards lockout).
LIVE_WRONG_PASSWORD_ENV = "SF_LIVE_WRONG_PASSWORD"
#: Every record a contract test creates has a Name starting with this.
NAME_PREFIX = "sfsuite-contract"
#: The sObject the tests write (every org has it; the sweep looks there).
SOBJECT = "Account"
COLLECTION_MAX = 200


def live_requested() -> bool:
    """Whether this run targets a real org (``make test-live``)."""
    return os.environ.get(TARGET_ENV, "").lower() == "live"


def live_conn_id() -> str | None:
    return os.environ.get(LIVE_CONN_ENV) or None


@dataclass
class Org:
    """A target org and what a test created there.

    :param conn_id: a ``salesforce_suite`` Airflow connection to the org.
    :param live: a real org (True) or the emulator (False).
    :param tag: this test's unique part of record names.
    """

    conn_id: str
    live: bool
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _undo: list[Callable[[], Any]] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        """The start of every Name this test gives a record (the teardown sweeps by it)."""
        return f"{NAME_PREFIX} {self.tag}"

    def name(self, label: str) -> str:
        return f"{self.prefix} {label}"

    @property
    def rest(self) -> SalesforceRestHook:
        return SalesforceRestHook(self.conn_id)

    def raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One authenticated call through the hooks' session, the response as it came (no
        raising): for tests where the status, headers or body shape is the point."""
        return self.rest.session.request(method, path, **kwargs)

    def data_path(self, path: str = "") -> str:
        return self.rest.data_url(path)

    def on_teardown(self, undo: Callable[[], Any]) -> None:
        """Run ``undo`` at teardown (last registered first), even if the test failed."""
        self._undo.append(undo)

    def create_accounts(self, *labels: str) -> list[str]:
        """Create Accounts named ``name(label)`` through sObject Collections (200 a call)."""
        ids: list[str] = []
        for start in range(0, len(labels), COLLECTION_MAX):
            chunk = labels[start:start + COLLECTION_MAX]
            records = [{"attributes": {"type": SOBJECT}, "Name": self.name(label)} for label in chunk]
            reply = self.rest.request("POST", self.data_path("composite/sobjects"),
                                      json={"allOrNone": True, "records": records}).json()
            ids.extend(item["id"] for item in reply)
        return ids

    def delete_ids(self, ids: list[str]) -> None:
        """Delete records by id through sObject Collections (200 a call); already gone is fine."""
        for start in range(0, len(ids), COLLECTION_MAX):
            chunk = ids[start:start + COLLECTION_MAX]
            self.rest.request("DELETE", self.data_path("composite/sobjects"),
                              params={"ids": ",".join(chunk), "allOrNone": "false"})

    def sweep(self) -> int:
        """Delete every Account this test left behind (found by Name); returns how many."""
        pattern = self.prefix.replace("'", "\\'")
        soql = f"SELECT Id FROM {SOBJECT} WHERE Name LIKE '{pattern}%'"
        ids = [row["Id"] for row in self.rest.query(soql)]
        self.delete_ids(ids)
        return len(ids)

    def teardown(self) -> None:
        failures: list[BaseException] = []
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception as exc:  # keep cleaning; report at the end
                failures.append(exc)
        try:
            self.sweep()
        except Exception as exc:
            failures.append(exc)
        if failures:
            raise AssertionError(f"contract test cleanup failed ({len(failures)}): {failures[0]}")
