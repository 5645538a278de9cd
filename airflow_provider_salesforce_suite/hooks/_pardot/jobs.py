"""Pardot Import API (``/api/v5/imports``) and Export API (``/api/v5/exports``).

Job states: imports ``Open`` -> ``Waiting`` -> ``Processing`` -> ``Complete`` (or ``Failed``);
exports ``Waiting`` -> ``Processing`` -> ``Complete`` (or ``Failed``). :func:`job_status`
is the one rule of "done" that sensors, triggers and operators use.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

#: Rows a batch file holds before a new batch starts (Pardot caps a batch file at 10 MB / 50k rows).
IMPORT_BATCH_ROWS = 50_000
DONE_STATES = frozenset({"Complete"})
FAILED_STATES = frozenset({"Failed", "Aborted"})


@dataclass(frozen=True)
class PardotJobStatus:
    """The state of an Import or Export job, judged once.

    :param job_id: the job id.
    :param state: Pardot's state.
    :param done: finished successfully.
    :param failed: finished unsuccessfully.
    :param info: the job's JSON.
    """

    job_id: int
    state: str
    done: bool
    failed: bool
    info: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Small JSON-safe summary (XCom, trigger events)."""
        keys = ("createdCount", "updatedCount", "errorCount", "resultRefs", "errorsRef")
        return {"job_id": self.job_id, "state": self.state, **{k: self.info[k] for k in keys if k in self.info}}


def job_status(info: Mapping[str, Any]) -> PardotJobStatus:
    """Judge an Import or Export job's JSON.

    :param info: ``GET /api/v5/imports/{id}`` or ``/exports/{id}`` body.
    """
    state = str(info.get("state"))
    return PardotJobStatus(int(info["id"]), state, state in DONE_STATES, state in FAILED_STATES, dict(info))


def _csv_batches(records: Iterable[Mapping[str, Any]], batch_rows: int) -> Iterator[bytes]:
    """CSV files of at most ``batch_rows`` rows; the header is the first record's keys."""
    header: list[str] | None = None
    out, writer, rows = io.StringIO(), None, 0
    for record in records:
        if header is None:
            header = list(record)
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
        assert writer is not None
        writer.writerow(["" if record.get(col) is None else record.get(col) for col in header])
        rows += 1
        if rows == batch_rows:
            yield out.getvalue().encode()
            out, rows = io.StringIO(), 0
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
    if rows:
        yield out.getvalue().encode()


class PardotJobsMixin:
    """Import and Export calls. Needs ``request``."""

    request: Any

    # -- imports ---------------------------------------------------------------------------------

    def create_import(self, operation: str = "Upsert", object_name: str = "Prospect") -> int:
        """Create an Open import; returns its id.

        :param operation: ``Create`` or ``Upsert``.
        :param object_name: ``Prospect``.
        """
        files = {"input": (None, json.dumps({"operation": operation, "object": object_name}), "application/json")}
        return int(self.request("POST", "/api/v5/imports", files=files, idempotent=False).json()["id"])

    def upload_import_batch(self, import_id: int, content: bytes) -> None:
        """Add a CSV batch file to an Open import.

        :param import_id: the import.
        :param content: CSV bytes with a header row.
        """
        files = {"importFile": ("batch.csv", content, "text/csv")}
        self.request("POST", f"/api/v5/imports/{import_id}/batches", files=files, idempotent=False)

    def submit_import(self, import_id: int) -> dict[str, Any]:
        """Set the import ``Ready`` so Pardot processes it.

        :param import_id: the import.
        """
        return self.request("PATCH", f"/api/v5/imports/{import_id}", json={"state": "Ready"}).json()

    def get_import(self, import_id: int) -> dict[str, Any]:
        """The import's JSON (state, counts, ``errorsRef``).

        :param import_id: the import.
        """
        return self.request("GET", f"/api/v5/imports/{import_id}").json()

    def iter_import_errors(self, import_id: int) -> Iterator[dict[str, str]]:
        """Yield the rejected rows of a Complete import (the input columns plus ``error``).

        :param import_id: the import.
        """
        response = self.request("GET", f"/api/v5/imports/{import_id}/errors", stream=True)
        with response:
            lines = (line.decode("utf-8") for line in response.iter_lines())
            yield from csv.DictReader(lines)

    def import_records(self, records: Iterable[Mapping[str, Any]], operation: str = "Upsert",
                       batch_rows: int = IMPORT_BATCH_ROWS,
                       on_created: Callable[[int], None] | None = None) -> int:
        """Create an import, upload ``records`` as CSV batches (streamed) and submit it; returns its id.

        :param records: prospect dicts (the first one's keys are the columns; ``email`` identifies).
        :param operation: ``Create`` or ``Upsert``.
        :param batch_rows: rows a batch file.
        :param on_created: called with the import id as soon as it exists, before any upload (an
            operator keeps it, so a retry after a crash part-way through finds the Open import).
        """
        import_id = self.create_import(operation)
        if on_created is not None:
            on_created(import_id)
        uploaded = 0
        for content in _csv_batches(records, batch_rows):
            self.upload_import_batch(import_id, content)
            uploaded += 1
        if not uploaded:
            raise ValueError("no records to import")
        self.submit_import(import_id)
        return import_id

    # -- exports ---------------------------------------------------------------------------------

    def create_export(self, procedure: str, fields: Sequence[str], arguments: Mapping[str, Any] | None = None) -> int:
        """Start an export; returns its id.

        :param procedure: e.g. ``visitorActivity_byDateAndType``, ``prospect_byUpdatedAt``.
        :param fields: columns of the result files.
        :param arguments: the procedure's arguments (``createdAfter``, ``updatedAfter`` ...).
        """
        body = {"fields": list(fields), "procedure": {"name": procedure, "arguments": dict(arguments or {})}}
        return int(self.request("POST", "/api/v5/exports", json=body, idempotent=False).json()["id"])

    def get_export(self, export_id: int) -> dict[str, Any]:
        """The export's JSON (state, ``resultRefs`` when Complete).

        :param export_id: the export.
        """
        return self.request("GET", f"/api/v5/exports/{export_id}").json()

    def iter_export_records(self, export_id: int) -> Iterator[dict[str, str]]:
        """Yield the rows of a Complete export's result files, streamed file by file.

        :param export_id: the export.
        """
        status = job_status(self.get_export(export_id))
        if not status.done:
            raise ValueError(f"Pardot export {export_id} is {status.state}, not Complete")
        for ref in status.info.get("resultRefs") or []:
            response = self.request("GET", ref, stream=True)
            with response:
                lines = (line.decode("utf-8") for line in response.iter_lines())
                yield from csv.DictReader(lines)
