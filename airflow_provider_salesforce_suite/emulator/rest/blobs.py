"""Blob fields streamed as bytes: ``sobjects/Attachment/{id}/Body``, ``Document/{id}/Body``,
``ContentVersion/{id}/VersionData`` (any base64 field of any object).

The stored base64 text is read and decoded piecewise, so a large body never sits whole in memory.
"""

from __future__ import annotations

from aiohttp import web

from ..web import state_of
from .versions import parse_version

#: Path segment pattern of the blob fields served (the route must not shadow relationship paths).
BLOB_FIELDS = "Body|VersionData|ContentData"


async def blob(request: web.Request) -> web.StreamResponse:
    """``GET .../sobjects/{sobject}/{record_id}/{blob_field}``: the field's bytes."""
    parse_version(request.match_info["version"])
    store = state_of(request).store
    sobject, record_id, field = (request.match_info[k] for k in ("sobject", "record_id", "blob_field"))
    length = store.blob_length(sobject, record_id, field)
    response = web.StreamResponse(headers={"Content-Type": "application/octetstream"})
    response.content_length = length
    await response.prepare(request)
    for chunk in store.blob_chunks(sobject, record_id, field):
        await response.write(chunk)
    await response.write_eof()
    return response
