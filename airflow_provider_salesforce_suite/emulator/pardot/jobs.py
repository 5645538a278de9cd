"""Import and Export jobs. A submitted job moves Waiting -> Processing -> Complete over
``settings.job_seconds`` while a worker thread does the work (like the Bulk worker)."""

from __future__ import annotations

import csv
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..hold import JobHold
from .data import PardotData, now, pardot_error
from ...core.pardot_objects import OBJECTS

#: Export procedures the emulator runs: name -> object path.
EXPORT_PROCEDURES = {
    "visitorActivity_byDateAndType": "visitor-activities",
    "prospect_mailableByUpdatedAt": "prospects",
    "prospect_byUpdatedAt": "prospects",
}


@dataclass
class PardotSettings:
    """Admin knobs (``/__emulator__/pardot``).

    :param job_seconds: how long an Import or Export job takes once submitted.
    :param daily_quota: Pardot API calls allowed from now on (None: no limit); past it, error 122.
    :param fail_next_job: the next submitted job ends ``Failed``.
    """

    job_seconds: float = 0.3
    daily_quota: int | None = None
    used: int = 0
    fail_next_job: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"job_seconds": self.job_seconds, "daily_quota": self.daily_quota, "used": self.used,
                "fail_next_job": self.fail_next_job}


@dataclass
class Job:
    id: int
    kind: str  # import | export
    state: str
    created_at: str
    operation: str = "Upsert"
    object: str = "Prospect"
    batches: list[bytes] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    procedure: dict[str, Any] = field(default_factory=dict)
    created: int = 0
    updated: int = 0
    errors: list[list[str]] = field(default_factory=list)
    results: list[bytes] = field(default_factory=list)
    error_header: list[str] = field(default_factory=list)
    # Decided when the job is submitted, not when its thread wakes: a job still sleeping from an
    # earlier test (after a reset) must not take the next job's failure.
    fail: bool = False

    def to_json(self, base: str) -> dict[str, Any]:
        if self.kind == "import":
            body = {"id": self.id, "state": self.state, "operation": self.operation, "object": self.object,
                    "createdAt": self.created_at, "createdCount": self.created, "updatedCount": self.updated,
                    "errorCount": len(self.errors), "batchesRef": f"{base}/api/v5/imports/{self.id}/batches"}
            if self.state == "Complete" and self.errors:
                body["errorsRef"] = f"{base}/api/v5/imports/{self.id}/errors"
            return body
        refs = ([f"{base}/api/v5/exports/{self.id}/results/{n}" for n in range(len(self.results))]
                if self.state == "Complete" else None)
        return {"id": self.id, "state": self.state, "fields": self.fields, "procedure": self.procedure,
                "createdAt": self.created_at, "resultRefs": refs}


class JobRunner:
    """Keeps the jobs and runs submitted ones on a worker thread."""

    def __init__(self, data: PardotData, settings: PardotSettings) -> None:
        self.data = data
        self.settings = settings
        #: the ``hold_jobs`` knob: jobs stay Processing while it is shut
        self.job_hold = JobHold()
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()
        self.job_hold.set(False)

    def new(self, kind: str, **values: Any) -> Job:
        with self._lock:
            job = Job(id=len(self._jobs) + 1, kind=kind, state="Open" if kind == "import" else "Waiting",
                      created_at=now(), **values)
            self._jobs[job.id] = job
        if kind == "export":
            self.submit(job)
        return job

    def get(self, kind: str, job_id: int) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.kind != kind:
            raise pardot_error(404, f"The requested {kind} {job_id} was not found", status=404)
        return job

    def submit(self, job: Job) -> None:
        with self._lock:
            job.fail, self.settings.fail_next_job = self.settings.fail_next_job, False
        job.state = "Waiting"
        threading.Thread(target=self._run, args=(job,), daemon=True, name=f"pardot-{job.kind}-{job.id}").start()

    def _run(self, job: Job) -> None:
        time.sleep(self.settings.job_seconds / 2)
        if self._jobs.get(job.id) is not job:  # the emulator was reset meanwhile: the job is gone
            return
        job.state = "Processing"
        if job.fail:
            job.state = "Failed"
            return
        try:
            self._import(job) if job.kind == "import" else self._export(job)
        except Exception as exc:  # the job fails; the server keeps running
            job.state = "Failed"
            job.errors.append(["", str(exc)])
            return
        time.sleep(self.settings.job_seconds / 2)
        self.job_hold.wait_blocking()
        job.state = "Complete"

    def _import(self, job: Job) -> None:
        spec = OBJECTS["prospects"]
        for batch in job.batches:
            reader = csv.reader(io.StringIO(batch.decode("utf-8-sig")))
            header = next(reader, [])
            job.error_header = job.error_header or header
            for row in reader:
                values = {name: value for name, value in zip(header, row) if value != ""}
                try:
                    if job.operation == "Create":
                        self.data.create(spec, values)
                        job.created += 1
                    else:
                        _, created = self.data.upsert_by_email(values)
                        job.created, job.updated = job.created + created, job.updated + (not created)
                except Exception as exc:
                    job.errors.append([*row, getattr(exc, "message", str(exc))])

    def _export(self, job: Job) -> None:
        spec = OBJECTS[EXPORT_PROCEDURES[job.procedure["name"]]]
        arguments = job.procedure.get("arguments") or {}
        after = arguments.get("updatedAfter") or arguments.get("createdAfter")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job.fields)
        last = 0
        while page := self.data.select(spec, after_id=last, limit=1000, updated_after=after):
            for record in page:
                writer.writerow(["" if record.get(f) is None else record.get(f) for f in job.fields])
            last = page[-1]["id"]
        job.results = [out.getvalue().encode()]

    def errors_csv(self, job: Job) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*job.error_header, "error"])
        writer.writerows(job.errors)
        return out.getvalue().encode()
