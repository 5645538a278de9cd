"""The pages: plain HTML naming the job, record or dataset and its state (no Lightning here)."""

from __future__ import annotations

import html
import json
from typing import Any

from aiohttp import web

from ..config import API_VERSIONS
from ..errors import SalesforceApiError
from ..web import state_of


def _page(title: str, facts: dict[str, Any]) -> web.Response:
    def cell(value: Any) -> str:
        return html.escape(json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))

    rows = "".join(f"<tr><th>{cell(key)}</th><td>{cell(value)}</td></tr>" for key, value in facts.items())
    body = (f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Salesforce emulator</p><table>{rows}</table></body></html>")
    return web.Response(text=body, content_type="text/html")


async def bulk_job(request: web.Request) -> web.Response:
    """``/lightning/setup/AsyncApiJobStatus/page?address=/<jobId>``: Setup's Bulk Data Load Job page."""
    from ..bulk.service import service_of

    job_id = request.query.get("address", "").strip("/")
    job = service_of(request).jobs.get(job_id)
    if job is None:
        raise SalesforceApiError("NOT_FOUND", f"No Bulk job {job_id!r}", status=404)
    return _page(f"Bulk Data Load Job {job.id}", {
        "Job ID": job.id, "API": f"Bulk {job.api}", "Object": job.object, "Operation": job.operation,
        "Status": job.state.value, "Records Processed": job.processed, "Records Failed": job.failed})


async def record(request: web.Request) -> web.Response:
    """``/lightning/r/<Object>/<Id>/view``: a record page."""
    sobject, record_id = request.match_info["sobject"], request.match_info["record_id"]
    found = state_of(request).store.retrieve(sobject, record_id, api_version=API_VERSIONS[-1])
    found.pop("attributes", None)
    return _page(f"{sobject} {record_id}", found)


async def analytics_dataset(request: web.Request) -> web.Response:
    """``/analytics/dataset/<id>``: a CRM Analytics dataset in Analytics Studio."""
    from ..analytics.service import service_of

    dataset = service_of(request).get("datasets", request.match_info["dataset_id"])
    return _page(f"Dataset {dataset.label}", {"Id": dataset.id, "API name": dataset.name, "Label": dataset.label})
