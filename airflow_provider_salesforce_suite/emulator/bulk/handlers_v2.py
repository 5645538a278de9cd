"""Bulk API 2.0 handlers: ``/services/data/vXX.X/jobs/ingest`` and ``/jobs/query``.

Errors are REST errors (the JSON list), rendered by the REST surface the paths belong to.
"""

from __future__ import annotations

import zlib
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ..errors import SalesforceApiError
from ..rest.versions import parse_version, version_number
from ..web import json_response, no_content, read_json, session_of
from ..wire import CSV
from .csvdata import DELIMITERS, LINE_ENDINGS, quoted
from .jobs import FAILURE, SUCCESS, UNPROCESSED, Job, JobState
from .service import BulkService, encode_locator, service_of

#: Salesforce refuses an upload over 150 MB once base64-encoded (about 112 MB raw).
MAX_UPLOAD_BASE64 = 150 * 1024 * 1024
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
QUERY_OPERATIONS = ("query", "queryAll")
#: Jobs per page of the job list.
LIST_PAGE = 1000
#: ``/jobs/query/{id}/resultPages`` exists from this API version.
PARALLEL_RESULTS_SINCE = 58.0


def _invalid_job(message: str) -> SalesforceApiError:
    return SalesforceApiError("INVALIDJOB", message)


def _not_found() -> SalesforceApiError:
    return SalesforceApiError("NOT_FOUND", "The requested resource does not exist", status=404)


def _version(request: web.Request) -> str:
    return parse_version(request.match_info["version"])


def _job(request: web.Request, kind: str) -> Job:
    job = service_of(request).jobs.get(request.match_info["job_id"])
    if job is None or job.api != "2.0" or job.kind != kind:
        raise _not_found()
    return job


def _format_options(body: dict[str, Any]) -> tuple[str, str, str]:
    content_type = body.get("contentType", "CSV")
    delimiter = body.get("columnDelimiter", "COMMA")
    line_ending = body.get("lineEnding", "LF")
    if content_type != "CSV":
        raise _invalid_job(f"InvalidJob : Invalid content type : {content_type}")
    if delimiter not in DELIMITERS:
        raise _invalid_job(f"InvalidJob : Invalid column delimiter : {delimiter}")
    if line_ending not in LINE_ENDINGS:
        raise _invalid_job(f"InvalidJob : Invalid line ending : {line_ending}")
    return content_type, delimiter, line_ending


async def _body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise SalesforceApiError("JSON_PARSER_ERROR", "The request body must be a JSON object")
    return body


def job_info(job: Job, *, full: bool) -> dict[str, Any]:
    """A 2.0 jobInfo, as create (``full=False``) or Get Job Info (``full=True``) returns it.

    :param job: the job.
    :param full: include the processing counters.
    """
    info: dict[str, Any] = {"id": job.id, "operation": job.operation, "object": job.object,
                            "createdById": job.created_by, "createdDate": job.created_date,
                            "systemModstamp": job.system_modstamp, "state": job.state.value}
    if job.external_id_field:
        info["externalIdFieldName"] = job.external_id_field
    if job.assignment_rule_id:
        info["assignmentRuleId"] = job.assignment_rule_id
    info.update({"concurrencyMode": job.concurrency_mode, "contentType": job.content_type,
                 "apiVersion": float(job.api_version)})
    if job.kind == "ingest" and job.api == "2.0":
        info["contentUrl"] = f"services/data/v{job.api_version}/jobs/ingest/{job.id}/batches"
    info.update({"lineEnding": job.line_ending, "columnDelimiter": job.column_delimiter})
    if full:
        info["jobType"] = "Classic" if job.api == "1.0" else ("V2Query" if job.kind == "query" else "V2Ingest")
        info["numberRecordsProcessed"] = job.processed
        if job.kind == "ingest":
            info["numberRecordsFailed"] = job.failed
        info["retries"] = job.retries
        info["totalProcessingTime"] = job.total_processing_ms
        if job.kind == "ingest":
            info["apiActiveProcessingTime"] = job.total_processing_ms
            info["apexProcessingTime"] = 0
        else:
            info["isPkChunkingSupported"] = True
        if job.error_message:
            info["errorMessage"] = job.error_message
    return info


# -- ingest ---------------------------------------------------------------------------------------

async def create_ingest(request: web.Request) -> web.Response:
    """``POST /jobs/ingest``: a new Open job."""
    version = _version(request)
    body = await _body(request)
    service = service_of(request)
    operation = body.get("operation")
    if operation not in INGEST_OPERATIONS:
        raise _invalid_job(f"InvalidJob : Invalid operation : {operation}")
    sobject = body.get("object")
    obj = service.store.metadata.get(sobject) if isinstance(sobject, str) else None
    if obj is None:
        raise _invalid_job(f"InvalidJob : Unable to find object: {sobject}")
    content_type, delimiter, line_ending = _format_options(body)
    external = body.get("externalIdFieldName")
    if operation == "upsert":
        fdef = obj.field(external) if isinstance(external, str) else None
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise _invalid_job(f"InvalidJob : Field {external} is not an External Id field on {obj.name}"
                               if external else "InvalidJob : External ID field is required for upsert")
        external = fdef.name
    job = service.add_job(Job(
        service.new_id("750"), "2.0", operation, obj.name, version, session_of(request).user_id,
        external_id_field=external if operation == "upsert" else None, content_type=content_type,
        column_delimiter=delimiter, line_ending=line_ending, assignment_rule_id=body.get("assignmentRuleId")))
    return json_response(job_info(job, full=False))


#: Salesforce's answer to a second upload into one job (verified against real orgs by other clients).
MULTIPLE_UPLOADS = ("Found multiple contents for job: {job_id}, please 'Close' / 'Abort' / 'Delete' the current Job "
                    "then create a new Job and make sure you only do 'PUT' once on a given Job.")


async def upload(request: web.Request) -> web.Response:
    """``PUT /jobs/ingest/{id}/batches``: the CSV data of an Open job (201, no body). A job takes one
    upload, as on Salesforce: a second is refused and the first stays."""
    job = _job(request, "ingest")
    if job.state != JobState.OPEN:
        raise SalesforceApiError("INVALIDJOB", f"InvalidJob : Job {job.id} is not in Open state", status=409)
    if job.uploads:
        raise SalesforceApiError("INVALIDJOBSTATE", MULTIPLE_UPLOADS.format(job_id=job.id))
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in ("text/csv", "application/octet-stream", ""):
        raise SalesforceApiError("INVALIDJOB", f"Content-Type {content_type} is not supported; use text/csv")
    service = service_of(request)
    path = service.results.new_file(".csv")
    size = 0
    with path.open("wb") as out:
        async for chunk in request.content.iter_chunked(1 << 20):
            size += len(chunk)
            if (size + 2) // 3 * 4 > MAX_UPLOAD_BASE64:
                out.close()
                path.unlink(missing_ok=True)
                raise SalesforceApiError("REQUEST_ENTITY_TOO_LARGE",
                                         "Job data exceeds the 150 MB limit once base64 encoded", status=413)
            out.write(chunk)
    if size == 0:
        path.unlink(missing_ok=True)
        raise SalesforceApiError("INVALIDJOB", "InvalidJob : Job data is empty")
    job.uploads.append(path)
    job.upload_bytes += size
    return web.Response(status=201)


async def patch_job(request: web.Request, kind: str) -> web.Response:
    """``PATCH /jobs/{kind}/{id}`` with ``{"state": "UploadComplete" | "Aborted"}``."""
    job = _job(request, kind)
    body = await _body(request)
    wanted = body.get("state")
    service = service_of(request)
    if wanted == "Aborted" and not job.state.is_terminal:
        job.abort_requested = True
        job.set_state(JobState.ABORTED)
    elif wanted == "UploadComplete" and kind == "ingest" and job.state == JobState.OPEN:
        job.set_state(JobState.UPLOAD_COMPLETE)
        service.schedule(service.run_v2(job))
    elif wanted in ("Aborted", "UploadComplete"):
        raise SalesforceApiError(
            "INVALIDJOB", f"InvalidJob : Job {job.id} can't be set to {wanted} from state {job.state.value}",
            status=409 if kind == "ingest" else 400)
    else:
        raise _invalid_job(f"InvalidJob : Invalid state : {wanted}")
    return json_response(job_info(job, full=False))


async def patch_ingest(request: web.Request) -> web.Response:
    """``PATCH /jobs/ingest/{id}``."""
    return await patch_job(request, "ingest")


async def patch_query(request: web.Request) -> web.Response:
    """``PATCH /jobs/query/{id}`` (only ``Aborted``)."""
    return await patch_job(request, "query")


async def get_ingest(request: web.Request) -> web.Response:
    """``GET /jobs/ingest/{id}``."""
    return json_response(job_info(_job(request, "ingest"), full=True))


async def get_query(request: web.Request) -> web.Response:
    """``GET /jobs/query/{id}``."""
    return json_response(job_info(_job(request, "query"), full=True))


async def _delete(request: web.Request, kind: str) -> web.Response:
    job = _job(request, kind)
    if not job.state.is_terminal:
        raise SalesforceApiError(
            "INVALIDJOB", f"InvalidJob : Job {job.id} must be in a terminal state before deletion "
            f"(UploadComplete is not)" if job.state == JobState.UPLOAD_COMPLETE else
            f"InvalidJob : Job {job.id} must be in a terminal state before deletion", status=400)
    service_of(request).delete_job(job)
    return no_content()


async def delete_ingest(request: web.Request) -> web.Response:
    """``DELETE /jobs/ingest/{id}`` (terminal jobs only)."""
    return await _delete(request, "ingest")


async def delete_query(request: web.Request) -> web.Response:
    """``DELETE /jobs/query/{id}`` (terminal jobs only)."""
    return await _delete(request, "query")


def _list(request: web.Request, kind: str) -> web.Response:
    version = _version(request)
    service = service_of(request)
    wanted_type = request.query.get("jobType")
    mode = request.query.get("concurrencyMode")
    jobs = [j for j in service.jobs.values() if (j.kind == kind or (kind == "ingest" and j.api == "1.0"))]
    infos = [job_info(j, full=True) for j in jobs]
    infos = [i for i in infos if (not wanted_type or i["jobType"] == wanted_type)
             and (not mode or i["concurrencyMode"] == mode)]
    try:
        start = int(request.query.get("queryLocator") or 0)
    except ValueError:
        raise SalesforceApiError("INVALIDLOCATOR", "Invalid locator") from None
    page = infos[start:start + LIST_PAGE]
    keys = ("id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
            "concurrencyMode", "contentType", "apiVersion", "jobType", "lineEnding", "columnDelimiter",
            "externalIdFieldName", "assignmentRuleId")
    records = [{k: i[k] for k in keys if k in i} for i in page]
    done = start + LIST_PAGE >= len(infos)
    next_url = None if done else f"/services/data/v{version}/jobs/{kind}?queryLocator={start + LIST_PAGE}"
    return json_response({"done": done, "records": records, "nextRecordsUrl": next_url})


async def list_ingest(request: web.Request) -> web.Response:
    """``GET /jobs/ingest``."""
    return _list(request, "ingest")


async def list_query(request: web.Request) -> web.Response:
    """``GET /jobs/query``."""
    return _list(request, "query")


async def _stream_csv(request: web.Request, head: str, lines: Any, eol: str,
                      headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Stream ``head`` and ``lines`` as CSV, gzip-compressed when the client accepts it."""
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    response = web.StreamResponse(status=200, headers={"Content-Type": CSV, **(headers or {})})
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    await response.prepare(request)
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if use_gzip else None  # wbits 31: gzip framing
    buffer: list[str] = [head + eol]
    size = len(buffer[0])

    async def flush(final: bool = False) -> None:
        data = "".join(buffer).encode("utf-8")
        buffer.clear()
        if compressor is not None:
            data = compressor.compress(data) + (compressor.flush() if final else b"")
        if data:
            await response.write(data)

    for line in lines:
        buffer.append(line + eol)
        size += len(line)
        if size > 256 * 1024:
            await flush()
            size = 0
    await flush(final=True)
    await response.write_eof()
    return response


async def _results(request: web.Request, kind: int) -> web.StreamResponse:
    job = _job(request, "ingest")
    service: BulkService = service_of(request)
    delimiter = DELIMITERS[job.column_delimiter]
    eol = LINE_ENDINGS[job.line_ending]
    if kind != UNPROCESSED and not job.state.is_terminal:
        raise SalesforceApiError("INVALIDJOB", f"InvalidJob : Job {job.id} is not yet complete", status=409)
    if kind == UNPROCESSED and not job.started:
        original, lines = service.raw_upload_rows(job)
    else:
        original, lines = job.result_header or "", service.results.lines(job.id, (kind,))
    prefix = {SUCCESS: quoted(("sf__Id", "sf__Created"), delimiter), FAILURE: quoted(("sf__Id", "sf__Error"), delimiter),
              UNPROCESSED: ""}[kind]
    head = prefix + (delimiter if prefix and original else "") + original
    return await _stream_csv(request, head, lines, eol)


async def successful_results(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/ingest/{id}/successfulResults``: ``"sf__Id","sf__Created",<columns>``."""
    return await _results(request, SUCCESS)


async def failed_results(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/ingest/{id}/failedResults``: ``"sf__Id","sf__Error",<columns>``."""
    return await _results(request, FAILURE)


async def unprocessed_records(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/ingest/{id}/unprocessedrecords``: the rows never processed, as uploaded."""
    return await _results(request, UNPROCESSED)


# -- query ----------------------------------------------------------------------------------------

async def create_query(request: web.Request) -> web.Response:
    """``POST /jobs/query``: validate the SOQL now (errors are 400s), process in the background."""
    version = _version(request)
    body = await _body(request)
    service = service_of(request)
    operation = body.get("operation")
    if operation not in QUERY_OPERATIONS:
        raise _invalid_job(f"InvalidJob : Invalid operation : {operation}")
    soql = body.get("query")
    if not isinstance(soql, str) or not soql.strip():
        raise _invalid_job("InvalidJob : query is required")
    content_type, delimiter, line_ending = _format_options(body)
    plan = service.store._engine.compile(soql)  # MALFORMED_QUERY / INVALID_FIELD ... as a 400 now
    if plan.count_only or plan.aggregate is not None or plan.children:
        raise SalesforceApiError("API_ERROR", "Aggregate queries and parent-to-child relationship queries "
                                              "are not supported by Bulk API 2.0 query")
    from ..soql.parser import parse

    job = service.add_job(Job(
        service.new_id("750"), "2.0", operation, parse(soql).sobject, version, session_of(request).user_id,
        content_type=content_type, column_delimiter=delimiter, line_ending=line_ending, query=soql,
        state=JobState.UPLOAD_COMPLETE))
    job.object = service.store.metadata.require(job.object).name
    service.schedule(service.run_v2(job))
    return json_response(job_info(job, full=False))


def _completed_query(request: web.Request) -> Job:
    """The request's query job, readable: created with this API version, and ``JobComplete``."""
    version = _version(request)
    job = _job(request, "query")
    if job.api_version != version:
        raise SalesforceApiError("INVALIDJOB", f"InvalidJob : Job {job.id} was created with API version "
                                 f"{job.api_version}: get its results with that version", status=409)
    if job.state != JobState.JOB_COMPLETE:
        raise SalesforceApiError("INVALIDJOB", f"InvalidJob : Job {job.id} is not in JobComplete state "
                                 f"(state: {job.state.value})", status=409 if job.state != JobState.FAILED else 400)
    return job


def _max_records(request: web.Request) -> int | None:
    raw_max = request.query.get("maxRecords")
    if raw_max is None:
        return None
    if not raw_max.isdigit() or int(raw_max) < 1:
        raise SalesforceApiError("INVALIDPARAMETER", f"Invalid maxRecords: {raw_max}")
    return int(raw_max)


def _locator(request: web.Request) -> str | None:
    locator = request.query.get("locator") or None
    if locator == "null":
        raise SalesforceApiError("INVALIDLOCATOR", "Invalid locator: null")
    return locator


async def query_results(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/query/{id}/results?locator=&maxRecords=``: one CSV page, header on every page."""
    job = _completed_query(request)
    max_records = _max_records(request)
    lines, next_locator, count = service_of(request).query_page(job, _locator(request), max_records)
    headers = {"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(count)}
    return await _stream_csv(request, job.result_header or "", lines, LINE_ENDINGS[job.line_ending], headers)


async def query_result_pages(request: web.Request) -> web.Response:
    """``GET /jobs/query/{id}/resultPages`` (API 58.0+): up to five ``/results?locator=`` URLs to
    download in parallel, each exactly one slice of the results (``maxRecords`` rows when given,
    else :data:`~.service.RESULT_PAGE_RECORDS`), then ``nextRecordsUrl`` and ``done``."""
    if version_number(_version(request)) < PARALLEL_RESULTS_SINCE:
        raise _not_found()
    job = _completed_query(request)
    max_records = _max_records(request)
    slices, after = service_of(request).result_slices(job, _locator(request), max_records)
    base = f"/services/data/v{job.api_version}/jobs/query/{job.id}"
    pages = [{"resultUrl": f"{base}/results?locator={quote(encode_locator(start, end), safe='')}"}
             for start, end in slices]
    next_url = None
    if after is not None:
        next_url = f"{base}/resultPages?locator={quote(encode_locator(after), safe='')}" + (
            f"&maxRecords={max_records}" if max_records else "")
    return json_response({"resultPages": pages, "nextRecordsUrl": next_url, "done": next_url is None})
