"""The journal of a resumable ``save_records`` run: what each sObject Collections chunk did.

One directory per task instance (the same on every try); every file is written whole (a local
file via a temporary name and an atomic rename; an object store writes an object whole), so a
file that is there is complete:

=====================================  ============================================================
``journal.json``                       first: the owner (``key``) and the parameters that decide
                                       how the input is cut and sent
``chunk-<start>.pending.json``         insert only, before the chunk is sent: from here until its
                                       outcome is known, the chunk's records may exist or not
``chunk-<start>.json``                 Salesforce answered the chunk: one result per record
=====================================  ============================================================

``<start>`` is the input index of the chunk's first record. Every entry holds the chunk's record
count and a digest of its wire payload, so a retry that re-reads and re-chunks the input can tell
a chunk is the one sent. A chunk that failed as a whole without being carried out (a 503, a limit,
a connect failure) leaves no entry: a retry sends it again.
"""

from __future__ import annotations

import json
import os
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from airflow_provider_salesforce_suite.core.errors import SalesforceSuiteError

if TYPE_CHECKING:
    from airflow_provider_salesforce_suite.hooks._rest.records import RecordResult
    from airflow_provider_salesforce_suite.io.formats import Source

HEADER = "journal.json"


class SalesforceSaveJournalError(SalesforceSuiteError):
    """An earlier try's journal does not fit this try (other parameters, changed input): resuming
    could save records twice or lose track of records already saved."""


def payload_digest(payload: list[Any]) -> str:
    """The fingerprint of a chunk's wire records (checks that a re-read chunk is the one sent).

    :param payload: the chunk's wire records (dicts, or ids for delete).
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _name(start: int, suffix: str = "") -> str:
    return f"chunk-{start:010d}{suffix}.json"


class SaveJournal:
    """Reads and writes the journal files of one task instance's save (see the module doc).

    Safe to call from the worker threads that send the chunks: each chunk has its own files.

    :param location: the journal directory (URI, path or ``ObjectStoragePath``).
    :param key: who owns the journal (``dag_id/run_id/task_id[-map_index]``).
    :param params: everything that decides the chunks and their payloads.
    """

    def __init__(self, location: Source, key: str, params: Mapping[str, Any]) -> None:
        from airflow_provider_salesforce_suite.io.formats import to_path
        from airflow_provider_salesforce_suite.io.whole import local_dir

        self.store = to_path(location)
        self.local = local_dir(self.store)
        self.key = key
        self.params = dict(params)
        self._names: frozenset[str] = frozenset()
        self._answered: dict[int, list[Any]] = {}  # verified chunks' results, until their turn

    @property
    def location(self) -> str:
        """The journal directory (for messages)."""
        return str(self.store)

    # -- files ---------------------------------------------------------------------------------------
    def _read(self, name: str) -> Any:
        with (self.store / name).open("r") as handle:
            return json.load(handle)

    def _write(self, name: str, value: Any) -> None:
        from airflow_provider_salesforce_suite.io.whole import write_whole

        write_whole(self.store, self.local, name, json.dumps(value, separators=(",", ":")))

    def _delete(self, name: str) -> None:
        path = self.store / name
        if path.exists():
            path.unlink()

    # -- the run ------------------------------------------------------------------------------------
    def open(self) -> int:
        """Take over an earlier try's journal, or start one; the chunks it holds.

        :raises SalesforceSaveJournalError: it belongs to another task instance or was written
            with other parameters.
        """
        if self.local is not None:
            os.makedirs(self.local, exist_ok=True)
        else:
            self.store.mkdir(parents=True, exist_ok=True)
        try:
            names = frozenset(p.name for p in self.store.iterdir())
        except FileNotFoundError:  # an object store has no empty "directory" to list
            names = frozenset()
        if HEADER not in names:
            self._write(HEADER, {"key": self.key, "params": self.params})
            self._names = frozenset()
            return 0
        header = self._read(HEADER)
        if header.get("key") != self.key:
            raise SalesforceSaveJournalError(
                f"{self.location} holds the save journal of {header.get('key')!r}, not of {self.key!r}: give each "
                "task its own journal location")
        if header.get("params") != self.params:
            old = header.get("params") or {}
            changed = sorted(k for k in set(old) | set(self.params) if old.get(k) != self.params.get(k))
            raise SalesforceSaveJournalError(
                f"The save parameters changed since an earlier try of this task saved part of the input "
                f"({', '.join(changed)}): it cannot be resumed safely. Restore them, or remove {self.location} to "
                "save everything again (the records saved by the earlier try would be saved twice)")
        self._names = names
        return sum(1 for n in names if n.startswith("chunk-") and n.endswith(".json"))

    def verified(self, work: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[int, list[Any]]]:
        """``work``'s chunks, each checked against its entry (if any) before it is passed on.

        Run where the chunks are cut (not on the threads that send them), so that a changed input
        is refused before any chunk after the changed one is sent.

        :param work: ``(start, payload)`` per chunk, as re-read now.
        :raises SalesforceSaveJournalError: a journaled chunk differs from its re-read payload.
        """
        for start, payload in work:
            done = _name(start) in self._names
            if done or _name(start, ".pending") in self._names:
                entry = self._read(_name(start) if done else _name(start, ".pending"))
                if entry.get("count") != len(payload) or entry.get("digest") != payload_digest(payload):
                    last = start + int(entry.get("count") or 0)
                    what = "were saved" if done else "were sent (outcome unknown)"
                    raise SalesforceSaveJournalError(
                        f"The input changed since an earlier try of this task: input records {start + 1}-{last} "
                        f"{what}, and reading the input again gives {len(payload)} different records from record "
                        f"{start + 1}. Refusing to resume. Restore the input, or remove {self.location} to save the "
                        "new input as a new load (the records already saved stay saved)")
                if done:
                    self._answered[start] = entry["results"]
            yield start, payload

    def settled(self, start: int) -> list[RecordResult] | None:
        """The results of the chunk at ``start`` when an earlier try got Salesforce's answer, else None
        (the chunk must have come through :meth:`verified`).

        :param start: input index of the chunk's first record.
        """
        from airflow_provider_salesforce_suite.hooks._rest.records import RecordResult

        kept = self._answered.pop(start, None)
        if kept is None:
            return None
        return [RecordResult(start + i, rid, ok, created, errors) for i, (rid, ok, created, errors) in enumerate(kept)]

    def was_sent(self, start: int) -> bool:
        """Whether an earlier try sent the insert chunk at ``start`` and never learnt its outcome."""
        return _name(start, ".pending") in self._names and _name(start) not in self._names

    def pending(self, start: int, payload: list[Any]) -> None:
        """Note an insert chunk before it is sent."""
        self._write(_name(start, ".pending"), {"start": start, "count": len(payload),
                                               "digest": payload_digest(payload)})

    def done(self, start: int, payload: list[Any], results: list[RecordResult]) -> None:
        """Note Salesforce's answer for the chunk at ``start`` (then drop its pending note)."""
        self._write(_name(start), {
            "start": start, "count": len(payload), "digest": payload_digest(payload),
            "results": [[r.id, r.success, r.created, r.errors] for r in results]})
        self._delete(_name(start, ".pending"))

    def forget(self, start: int) -> None:
        """The chunk at ``start`` was not carried out (failed as a whole): a retry sends it again."""
        self._delete(_name(start, ".pending"))

    def check_read(self, records: int) -> None:
        """Refuse an input that now ends before chunks an earlier try saved or sent.

        :param records: records the input has now.
        :raises SalesforceSaveJournalError: naming the chunks beyond it.
        """
        beyond = sorted(int(n[6:16]) for n in self._names
                        if n.startswith("chunk-") and n.endswith(".json") and int(n[6:16]) >= records)
        if beyond:
            raise SalesforceSaveJournalError(
                f"The input changed since an earlier try of this task: it now has {records} records, but records "
                f"from {beyond[0] + 1} on were already saved or sent. Refusing to resume. Restore the input, or "
                f"remove {self.location} to save the new input as a new load (the records already saved stay saved)")

    def remove(self) -> None:
        """Drop the journal (the save finished: nothing is left to resume)."""
        self.store.fs.rm(self.store.path, recursive=True)
