"""Durable progress of a Bulk ingest submission (``SalesforceBulkHook.ingest(..., wait=False)``).

A submission sends many uploads (2.0: one job each; 1.0: one batch each) before its caller can
store the job ids anywhere. So that a worker dying part-way leaves no job unknown, each step is
written to ``results_dir/_chunks`` (the same directory on every try) before the next one starts:

============================  ==============================================================
``submission.json``           first: the owner (``key``), the parameters that decide how the
                              input is cut and loaded, and the 1.0 job once it is created
``chunk-NNNNN.csv``           the chunk's bytes, kept before any of them is sent
``chunk-NNNNN.pending.json``  the chunk's job before its data is sent (2.0: the job is created,
                              the upload not yet closed; 1.0: the batch is about to be added)
``chunk-NNNNN.json``          the chunk is in (2.0: upload closed; 1.0: batch added, with its id)
``manifest.json``             last: the whole submission, as ``collect_ingest_results`` reads it
============================  ==============================================================

Each file is written whole (a local file via a temporary name and an atomic rename; an object
store writes an object whole), so a file that is there is complete. Chunks are submitted one
after another, so the ``chunk-NNNNN.json`` entries run from 0 without a gap and at most the next
chunk is pending. Resuming (:meth:`SubmissionJournal.load`) reads them back; the hook settles the
pending chunk with Salesforce (see ``SalesforceBulkHook._settle_pending``), re-reads the input,
checks that the chunks already submitted come out the same (:meth:`SubmissionJournal.check`) and
sends only the rest.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, Mapping

from airflow_provider_salesforce_suite.hooks._bulk.chunking import Chunk
from airflow_provider_salesforce_suite.hooks._bulk.states import SalesforceBulkError
from airflow_provider_salesforce_suite.io.whole import write_whole

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

HEADER = "submission.json"
MANIFEST = "manifest.json"
#: Fields of a chunk entry that a re-read of the same input and limits must reproduce exactly.
_SAME = ("first_row", "records", "size", "columns", "digest", "rejected")
_READ_BYTES = 1 << 20


def digest(data: bytes) -> str:
    """The fingerprint of an upload's bytes (checks that a re-read chunk is the one sent)."""
    return blake2b(data, digest_size=16).hexdigest()


def entry_of(chunk: Chunk, job_id: str | None, data_digest: str, batch_id: str | None = None) -> dict[str, Any]:
    """The journal and manifest entry of a submitted chunk (``job_id`` None: nothing of it was
    uploaded, every row being refused before upload; ``rejected`` only when some row was)."""
    entry = {"index": chunk.index, "file": os.path.basename(chunk.path), "columns": chunk.columns,
             "first_row": chunk.first_row, "records": chunk.records, "size": chunk.size,
             "delimiter": chunk.delimiter, "job_id": job_id, "batch_id": batch_id, "digest": data_digest}
    if chunk.rejected:
        entry["rejected"] = [list(row) for row in chunk.rejected]
    return entry


def _name(index: int, suffix: str) -> str:
    return f"chunk-{index:05d}{suffix}"


@dataclass
class Progress:
    """What an earlier try of the same submission left behind.

    :param entries: the chunks submitted, in order.
    :param pending: the chunk whose job was noted but whose data may or may not have gone in.
    :param v1_job: the 1.0 job the chunks were being added to.
    :param manifest: the finished submission (every chunk sent, 1.0 job closed), if it got that far.
    """

    entries: list[dict[str, Any]]
    pending: dict[str, Any] | None
    v1_job: str | None
    manifest: dict[str, Any] | None


class SubmissionJournal:
    """Writes (and reads back) the progress files of one submission.

    :param store: ``results_dir/_chunks``.
    :param local: the same directory as a local path, or None when it is remote.
    :param key: who owns the submission (e.g. the task instance); None: not resumable.
    :param params: everything that decides the chunks and the jobs (sobject, operation, limits...).
    """

    def __init__(self, store: ObjectStoragePath, local: str | None, key: str | None,
                 params: Mapping[str, Any]) -> None:
        self.store = store
        self.local = local
        self.key = key
        self.params = dict(params)
        self.entries: list[dict[str, Any]] = []
        self.v1_job: str | None = None

    # -- files ---------------------------------------------------------------------------------------
    def _read(self, name: str) -> Any:
        path = self.store / name
        if not path.exists():
            return None
        with path.open("r") as handle:
            return json.load(handle)

    def _write(self, name: str, value: Any) -> None:
        write_whole(self.store, self.local, name, json.dumps(value))

    def _header(self) -> dict[str, Any]:
        return {"key": self.key, "params": self.params, "v1_job": self.v1_job}

    @property
    def location(self) -> str:
        """The directory of the progress files (for messages)."""
        return str(self.store)

    # -- reading -------------------------------------------------------------------------------------
    def load(self) -> Progress | None:
        """The progress of an earlier try of this submission, or None to start afresh (no progress,
        no ``key``, or progress left by a caller that gave none).

        :raises SalesforceBulkError: the directory holds another submission's progress, or this
            one's with other parameters: resuming could load records twice, starting afresh could
            lose track of jobs already submitted.
        """
        header = self._read(HEADER) if self.key is not None else None
        if header is None or header.get("key") is None:
            return None
        if header["key"] != self.key:
            raise SalesforceBulkError(
                f"{self.location} holds the unfinished submission of {header['key']!r}, not of {self.key!r}: give "
                f"each task run its own results_dir, or remove that directory once its jobs are dealt with")
        if header.get("params") != self.params:
            changed = sorted(k for k in set(self.params) | set(header.get("params") or {})
                             if (header.get("params") or {}).get(k) != self.params.get(k))
            raise SalesforceBulkError(
                f"The Bulk ingest parameters changed since an earlier try submitted part of the input "
                f"({', '.join(changed)}): it cannot be resumed safely. Restore them, or remove {self.location} "
                "to submit everything again (the records already submitted would be loaded twice)")
        self.v1_job = header.get("v1_job")
        manifest = self._read(MANIFEST)
        entries = []
        while (entry := self._read(_name(len(entries), ".json"))) is not None:
            entries.append(entry)
        return Progress(entries, self._read(_name(len(entries), ".pending.json")), self.v1_job, manifest)

    def check(self, chunk: Chunk, entry: Mapping[str, Any]) -> None:
        """Refuse to resume when a re-read chunk differs from the one submitted as ``entry``.

        :raises SalesforceBulkError: the input (or its chunking) changed.
        """
        hasher = blake2b(digest_size=16)
        if chunk.path:
            with open(chunk.path, "rb") as spill:
                while block := spill.read(_READ_BYTES):
                    hasher.update(block)
        found = entry_of(chunk, entry["job_id"], hasher.hexdigest() if chunk.path else "")
        if any(found.get(field) != entry.get(field) for field in _SAME):
            last = entry["first_row"] + entry["records"] - 1
            raise SalesforceBulkError(
                f"The input changed since an earlier try submitted it: input rows {entry['first_row']}-{last} "
                f"({entry['records']} records, {entry['size']} bytes) went to Bulk job {entry['job_id']}, and "
                f"reading the input again gives {chunk.records} records, {chunk.size} bytes"
                f"{' (different content)' if found['size'] == entry['size'] else ''} from row {chunk.first_row}. "
                f"Refusing to resume. {self.remedy()}")

    def short_input(self, records_read: int) -> SalesforceBulkError:
        """The error for an input that ends before the records already submitted."""
        submitted = sum(e["records"] for e in self.entries)
        return SalesforceBulkError(
            f"The input changed since an earlier try submitted it: it now has {records_read} records, but "
            f"{submitted} were already submitted (jobs {', '.join(job_ids(self.entries))}). Refusing to resume. "
            f"{self.remedy()}")

    def remedy(self) -> str:
        """What a user can do about a submission that cannot be resumed."""
        return (f"Restore the input, or remove {self.location} to submit the new input as a new load (the "
                "records of the jobs already submitted stay loaded).")

    # -- writing -------------------------------------------------------------------------------------
    def begin(self) -> None:
        """Start afresh: forget any earlier progress and kept chunks, then write the header."""
        if self.local is not None:
            shutil.rmtree(self.local, ignore_errors=True)
            os.makedirs(self.local, exist_ok=True)
        else:
            if self.store.exists():
                self.store.fs.rm(self.store.path, recursive=True)
            self.store.mkdir(parents=True, exist_ok=True)
        self.entries = []
        self.v1_job = None
        self._write(HEADER, self._header())

    def resume(self, progress: Progress) -> None:
        """Continue from ``progress`` (see :meth:`load`)."""
        self.entries = list(progress.entries)
        self.v1_job = progress.v1_job

    def set_v1_job(self, job_id: str) -> None:
        """Note the 1.0 job before any batch is added to it."""
        self.v1_job = job_id
        self._write(HEADER, self._header())

    def pending(self, entry: Mapping[str, Any]) -> None:
        """Note a chunk's job before its data is sent."""
        self._write(_name(entry["index"], ".pending.json"), dict(entry))

    def done(self, entry: Mapping[str, Any]) -> None:
        """Note that a chunk's data is in (the job closed, or the batch added)."""
        self._write(_name(entry["index"], ".json"), dict(entry))
        self.entries.append(dict(entry))

    def finish(self, api: str, ids: list[str]) -> dict[str, Any]:
        """Write the manifest of the whole submission (every chunk in, the 1.0 job closed)."""
        manifest = {"api": api, "key": self.key, "job_ids": ids, "chunks": self.entries}
        self._write(MANIFEST, manifest)
        return manifest


def job_ids(entries: list[Mapping[str, Any]]) -> list[str]:
    """The distinct jobs of ``entries``, in submission order."""
    return list(dict.fromkeys(e["job_id"] for e in entries if e["job_id"] is not None))
