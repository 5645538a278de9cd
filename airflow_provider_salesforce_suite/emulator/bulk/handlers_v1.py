"""Bulk API 1.0 handlers: ``/services/async/XX.X/job[/{id}[/batch[/{bid}[/request|/result[/{rid}]]]]]``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ...core.safexml import local_name, parse_xml_safely, xml_text
from ..auth import token_of
from ..config import API_VERSIONS
from ..errors import SalesforceApiError
from ..sessions import Session
from ..web import session_of, state_of
from .jobs import SUCCESS, Batch, Job, JobState
from ..wire import BULK_V1_TYPES, BULK_XML
from ..wire import reply as wire_reply
from .render import NS, WANTS_JSON, reply, reply_list, v1_error
from .service import MAX_BATCH_BYTES, service_of

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete", "query", "queryAll")
_JOB_FIELDS = ("operation", "object", "externalIdFieldName", "concurrencyMode", "contentType", "state",
               "assignmentRuleId")


async def v1_session(request: web.Request) -> Session:
    """The session of ``X-SFDC-Session`` (or a Bearer token); ``InvalidSessionId`` (400) otherwise.

    :param request: the request.
    """
    token = request.headers.get("X-SFDC-Session", "").strip() or token_of(request)
    if token and token.lower().startswith("bearer "):
        token = token[7:].strip()
    session = state_of(request).session(token) if token else None
    if session is None:
        raise SalesforceApiError("INVALID_SESSION_ID", "Invalid session id", status=400)
    return session


def _version(request: web.Request) -> str:
    version = request.match_info["version"]
    if version not in API_VERSIONS:
        raise v1_error("InvalidUrl", f"Unsupported API version: {version}", 404)
    return version


def _v1_date(stamp: str) -> str:
    return stamp.replace("+0000", "Z")


def _media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "").split(";")[0].strip().lower()


async def _info_body(request: web.Request) -> dict[str, str]:
    """A jobInfo request body as a dict, read in the format the request says it is in (not the
    job's: salesforce-bulk closes JSON jobs with an XML body); no ``Content-Type``: by its first byte."""
    raw = await request.read()
    media = _media_type(request)
    if "json" in media or ("xml" not in media and raw.lstrip()[:1] in (b"{", b"[")):
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise v1_error("InvalidJob", "Unable to parse JSON") from None
        if not isinstance(body, dict):
            raise v1_error("InvalidJob", "Unable to parse JSON")
        return {k: _json_enum(k, v) for k, v in body.items() if v is not None}
    root = parse_xml_safely(raw)
    if root is None:
        raise v1_error("InvalidXML", "Unable to parse XML: a DTD or entity declaration, or malformed XML")
    return {local_name(child.tag): (child.text or "").strip() for child in root}


#: JSON jobInfo enums also bind from their ordinal, as Salesforce's JSON binding does (simple-salesforce
#: sends ``"concurrencyMode": 0`` for Parallel and ``1`` for Serial).
_ENUM_ORDINALS = {"concurrencyMode": ("Parallel", "Serial")}


def _json_enum(key: str, value: Any) -> str:
    names = _ENUM_ORDINALS.get(key)
    if names is not None and type(value) is int and 0 <= value < len(names):
        return names[value]
    return str(value)


def _job(request: web.Request) -> Job:
    job = service_of(request).jobs.get(request.match_info["job_id"])
    if job is None or job.api != "1.0":
        raise v1_error("InvalidJob", f"Unable to find job: {request.match_info['job_id']}")
    request[WANTS_JSON] = job.content_type == "JSON"
    return job


def _batch(request: web.Request, job: Job) -> Batch:
    batch = service_of(request).batches.get(request.match_info["batch_id"])
    if batch is None or batch.job_id != job.id:
        raise v1_error("InvalidBatch", f"Unable to find batch: {request.match_info['batch_id']}")
    return batch


def job_info(request: web.Request, job: Job) -> dict[str, Any]:
    """A 1.0 jobInfo (Salesforce's element order).

    :param request: the request (to reach the batches).
    :param job: the job.
    """
    batches = [service_of(request).batches[b] for b in job.batch_ids if b in service_of(request).batches]
    count = {s: sum(1 for b in batches if b.state == s) for s in JobState}
    return {
        "id": job.id, "operation": job.operation, "object": job.object, "createdById": job.created_by,
        "createdDate": _v1_date(job.created_date), "systemModstamp": _v1_date(job.system_modstamp),
        "state": job.state.value, "externalIdFieldName": job.external_id_field,
        "concurrencyMode": job.concurrency_mode, "contentType": job.content_type,
        "numberBatchesQueued": count[JobState.QUEUED], "numberBatchesInProgress": count[JobState.IN_PROGRESS],
        "numberBatchesCompleted": count[JobState.COMPLETED], "numberBatchesFailed": count[JobState.FAILED],
        "numberBatchesTotal": len(batches), "numberRecordsProcessed": job.processed, "numberRetries": 0,
        "apiVersion": float(job.api_version), "numberRecordsFailed": job.failed,
        "totalProcessingTime": sum(b.total_processing_ms for b in batches),
        "apiActiveProcessingTime": sum(b.total_processing_ms for b in batches), "apexProcessingTime": 0,
    }


def batch_info(batch: Batch) -> dict[str, Any]:
    """A 1.0 batchInfo.

    :param batch: the batch.
    """
    return {
        "id": batch.id, "jobId": batch.job_id, "state": batch.state.value, "stateMessage": batch.state_message,
        "createdDate": _v1_date(batch.created_date), "systemModstamp": _v1_date(batch.system_modstamp),
        "numberRecordsProcessed": batch.processed, "numberRecordsFailed": batch.failed,
        "totalProcessingTime": batch.total_processing_ms, "apiActiveProcessingTime": batch.total_processing_ms,
        "apexProcessingTime": 0,
    }


def _pk_chunking(header: str | None) -> dict[str, str] | None:
    if not header or header.strip().lower() == "false":
        return None
    if header.strip().lower() == "true":
        return {}
    options = {}
    for part in header.split(";"):
        key, _, value = part.partition("=")
        if key.strip():
            options[key.strip()] = value.strip()
    return options


async def create_job(request: web.Request) -> web.Response:
    """``POST /job``: a new Open job (201)."""
    version = _version(request)
    body = await _info_body(request)
    service = service_of(request)
    operation = body.get("operation")
    if operation not in OPERATIONS:
        raise v1_error("InvalidJob", f"Invalid operation: {operation}")
    obj = service.store.metadata.get(body.get("object", ""))
    if obj is None:
        raise v1_error("InvalidJob", f"Unable to find object: {body.get('object')}")
    content_type = body.get("contentType", "XML")
    if content_type not in BULK_V1_TYPES:
        raise v1_error("InvalidJob", f"Invalid content type: {content_type}")
    mode = body.get("concurrencyMode", "Parallel")
    if mode not in ("Parallel", "Serial"):
        raise v1_error("InvalidJob", f"Invalid concurrency mode: {mode}")
    external = body.get("externalIdFieldName")
    if operation == "upsert":
        fdef = obj.field(external or "")
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise v1_error("InvalidJob", f"External ID field required for upsert: {external or ''}")
        external = fdef.name
    pk = _pk_chunking(request.headers.get("Sforce-Enable-PKChunking"))
    if pk is not None and operation not in ("query", "queryAll"):
        raise v1_error("InvalidJob", "PK Chunking is only supported for query operations")
    job = service.add_job(Job(service.new_id("750"), "1.0", operation, obj.name, version,
                              session_of(request).user_id, external_id_field=external if operation == "upsert"
                              else None, content_type=content_type, concurrency_mode=mode, pk_chunking=pk))
    # No job yet when the request came: the reply's format follows the request's Content-Type.
    return reply(request, "jobInfo", job_info(request, job), status=201)


async def get_job(request: web.Request) -> web.Response:
    """``GET /job/{id}``."""
    job = _job(request)
    return reply(request, "jobInfo", job_info(request, job))


async def update_job(request: web.Request) -> web.Response:
    """``POST /job/{id}`` with state ``Closed`` or ``Aborted``."""
    job = _job(request)
    wanted = (await _info_body(request)).get("state")
    service = service_of(request)
    if wanted not in ("Closed", "Aborted"):
        raise v1_error("InvalidJobState", f"Invalid state: {wanted}")
    # A Closed job can still be aborted (its Queued batches are then not processed); nothing reopens one.
    closed_to_abort = job.state is JobState.CLOSED and wanted == "Aborted"
    if job.state in (JobState.CLOSED, JobState.ABORTED, JobState.FAILED) and job.state.value != wanted \
            and not closed_to_abort:
        raise v1_error("InvalidJobState", f"Job {job.id} is {job.state.value}; it cannot be {wanted}")
    if wanted == "Aborted":
        job.abort_requested = True
        for batch_id in job.batch_ids:
            batch = service.batches.get(batch_id)
            if batch is not None and batch.state == JobState.QUEUED:
                batch.set_state(JobState.NOT_PROCESSED, "Job aborted")
    job.set_state(JobState(wanted))
    return reply(request, "jobInfo", job_info(request, job))


def _parse_records(job: Job, raw: bytes) -> list[dict[str, Any]]:
    if job.content_type == "JSON":
        try:
            records = json.loads(raw)
        except ValueError:
            raise v1_error("InvalidBatch", "Failed to parse JSON: malformed batch content") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise v1_error("InvalidBatch", "Failed to parse JSON: expected an array of records")
        return [{k: v for k, v in r.items() if k != "attributes"} for r in records]
    root = parse_xml_safely(raw)
    if root is None:
        raise v1_error("InvalidXML", "Unable to parse XML: a DTD or entity declaration, or malformed XML")
    records = []
    for sobject in root:
        record: dict[str, Any] = {}
        for child in sobject:
            nil = child.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"
            record[local_name(child.tag)] = None if nil else (child.text or "")
        records.append(record)
    return records


def _check_batch_type(request: web.Request, job: Job) -> None:
    """A batch must be sent as the job's format: a JSON batch in a CSV job (or any other pair of
    the three formats) is refused. A body with no or another ``Content-Type`` is read as the job's.

    The exception code is the one Salesforce's error list gives for a bad batch; the message wording
    is not confirmed from Salesforce's documentation (see docs/emulator.md, "Wire details").
    """
    media = _media_type(request)
    expected = BULK_V1_TYPES[job.content_type]
    if media in BULK_V1_TYPES.values() and media != expected:
        raise v1_error("InvalidBatch", f"Batch content type {media} does not match the job's contentType "
                                       f"{job.content_type}: send it as {expected}")


async def add_batch(request: web.Request) -> web.Response:
    """``POST /job/{id}/batch``: a new Queued batch, processed in the background (201)."""
    job = _job(request)
    if job.state != JobState.OPEN:
        raise v1_error("InvalidJobState", f"Job {job.id} is not open; batches cannot be added")
    _check_batch_type(request, job)
    service = service_of(request)
    raw = await request.read()
    path = service.results.new_file(".batch")
    path.write_bytes(raw)
    batch = Batch(service.new_id("751"), job.id, path, content_type=job.content_type)
    service.batches[batch.id] = batch
    job.batch_ids.append(batch.id)
    if not raw:
        batch.set_state(JobState.FAILED, "InvalidBatch : Empty batch content")
    elif len(raw) > MAX_BATCH_BYTES:
        batch.set_state(JobState.FAILED, f"InvalidBatch : Exceeded max size limit of {MAX_BATCH_BYTES}")
    elif job.kind == "ingest" and job.content_type != "CSV":
        try:
            batch.records = _parse_records(job, raw)
        except SalesforceApiError:
            service.batches.pop(batch.id)
            job.batch_ids.remove(batch.id)
            path.unlink(missing_ok=True)
            raise
        if len(batch.records) > 10_000:
            batch.set_state(JobState.FAILED, f"InvalidBatch : Exceeded number of records : {len(batch.records)}. "
                                             "Number of records should be less than or equal to 10000")
    if batch.state == JobState.QUEUED:
        if job.kind == "query" and job.pk_chunking is not None:
            service.schedule(_chunk_then_run(service, job, batch))
        else:
            service.schedule(service.run_v1_batch(job, batch))
    return reply(request, "batchInfo", batch_info(batch), status=201)


async def _chunk_then_run(service: Any, job: Job, batch: Batch) -> None:
    import asyncio

    children = await asyncio.get_running_loop().run_in_executor(None, service.pk_chunk, job, batch)
    for child in children:
        await service.run_v1_batch(job, child)


async def list_batches(request: web.Request) -> web.Response:
    """``GET /job/{id}/batch``: batchInfoList."""
    job = _job(request)
    service = service_of(request)
    return reply_list(request, [batch_info(service.batches[b]) for b in job.batch_ids if b in service.batches])


async def get_batch(request: web.Request) -> web.Response:
    """``GET /job/{id}/batch/{bid}``."""
    job = _job(request)
    return reply(request, "batchInfo", batch_info(_batch(request, job)))


async def batch_request(request: web.Request) -> web.Response:
    """``GET /job/{id}/batch/{bid}/request``: the body as it was sent."""
    job = _job(request)
    batch = _batch(request, job)
    # Sent back as the job's format, as it came in (a query batch's SOQL too: unconfirmed).
    return wire_reply(batch.request.read_bytes(), BULK_V1_TYPES[job.content_type])


def _done(batch: Batch) -> None:
    if batch.state != JobState.COMPLETED:
        raise v1_error("InvalidBatch", "Records not processed" if batch.state != JobState.FAILED
                       else f"Batch failed: {batch.state_message}")


async def batch_result(request: web.Request) -> web.StreamResponse:
    """``GET /job/{id}/batch/{bid}/result``: per-record results (ingest) or result ids (query)."""
    job = _job(request)
    batch = _batch(request, job)
    _done(batch)
    service = service_of(request)
    if job.kind == "query":
        if job.content_type == "JSON":
            return wire_reply(json.dumps(batch.result_ids), BULK_V1_TYPES["JSON"])
        inner = "".join(f"<result>{r}</result>" for r in batch.result_ids)
        return wire_reply(f'<?xml version="1.0" encoding="UTF-8"?><result-list xmlns="{NS}">{inner}</result-list>',
                          BULK_XML)
    rows = (json.loads(line) for line in service.results.lines(batch.id, (SUCCESS,)))
    if job.content_type == "CSV":
        from .csvdata import quoted

        lines = [quoted(("Id", "Success", "Created", "Error"), ",")]
        for rid, ok, created, code, message, fields in rows:
            error = f"{code}:{message}:{','.join(fields) + ' ' if fields else ''}--" if code else ""
            lines.append(quoted((rid or "", ok, created, error), ","))
        return wire_reply("\n".join(lines) + "\n", BULK_V1_TYPES["CSV"])
    results = []
    for rid, ok, created, code, message, fields in rows:
        errors = [{"fields": fields, "message": message, "statusCode": code}] if code else []
        results.append({"id": rid, "success": ok, "created": created, "errors": errors})
    if job.content_type == "JSON":
        return wire_reply(json.dumps(results), BULK_V1_TYPES["JSON"])
    parts = []
    for r in results:
        errs = "".join("<errors>" + "".join(f"<fields>{xml_text(f)}</fields>" for f in e["fields"])
                       + f"<message>{xml_text(e['message'])}</message><statusCode>{e['statusCode']}</statusCode>"
                       "</errors>" for e in r["errors"])
        rid = f"<id>{r['id']}</id>" if r["id"] else "<id/>"
        parts.append(f"<result>{errs}{rid}<success>{str(r['success']).lower()}</success>"
                     f"<created>{str(r['created']).lower()}</created></result>")
    return wire_reply(f'<?xml version="1.0" encoding="UTF-8"?><results xmlns="{NS}">{"".join(parts)}</results>',
                      BULK_XML)


async def query_result(request: web.Request) -> web.StreamResponse:
    """``GET /job/{id}/batch/{bid}/result/{rid}``: one result file of a query batch."""
    job = _job(request)
    batch = _batch(request, job)
    _done(batch)
    result_id = request.match_info["result_id"]
    if result_id not in batch.result_ids:
        raise v1_error("InvalidBatch", f"Unable to find result: {result_id}")
    service = service_of(request)
    rows = (json.loads(line) for line in service.results.lines(result_id, (SUCCESS,)))
    response = web.StreamResponse(headers={"Content-Type": BULK_V1_TYPES[job.content_type]})
    await response.prepare(request)
    if job.content_type == "CSV":
        from .csvdata import quoted

        await response.write((quoted(batch.columns, ",") + "\n").encode())
        for row in rows:
            await response.write((quoted(row, ",") + "\n").encode())
    elif job.content_type == "JSON":
        await response.write(b"[")
        for n, row in enumerate(rows):
            record = _nested(job.object, batch.columns, row)
            await response.write((("," if n else "") + json.dumps(record)).encode())
        await response.write(b"]")
    else:
        xsi = "http://www.w3.org/2001/XMLSchema-instance"
        await response.write(f'<?xml version="1.0" encoding="UTF-8"?><queryResult xmlns="{NS}" '
                             f'xmlns:xsi="{xsi}">'.encode())
        for row in rows:
            cells = "".join(f'<{c}>{xml_text(v)}</{c}>' if v is not None else f'<{c} xsi:nil="true"/>'
                            for c, v in zip(batch.columns, row) if "." not in c)
            await response.write(f'<records xsi:type="sObject"><type>{job.object}</type>{cells}</records>'.encode())
        await response.write(b"</queryResult>")
    await response.write_eof()
    return response


def _nested(sobject: str, columns: list[str], row: list[Any]) -> dict[str, Any]:
    """A flat row as a JSON record: ``Owner.Name`` becomes ``{"Owner": {"Name": ...}}``."""
    record: dict[str, Any] = {"attributes": {"type": sobject}}
    for column, value in zip(columns, row):
        *path, leaf = column.split(".")
        target = record
        for part in path:
            target = target.setdefault(part, {})
        target[leaf] = value
    return record
