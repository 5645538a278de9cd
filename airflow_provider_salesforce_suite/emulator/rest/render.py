"""The REST API's error wire format: a JSON list ``[{"message","errorCode","fields"}]``."""

from __future__ import annotations

from aiohttp import web

from ..errors import SalesforceApiError
from ..web import json_response


def render_rest_error(request: web.Request, error: SalesforceApiError) -> web.Response:
    """Render ``error`` as the REST API does.

    An ambiguous upsert (status 300) is a JSON list of the matching records' URLs instead.

    :param request: the request.
    :param error: the error.
    """
    headers: dict[str, str] = {}
    if error.status == 300:
        urls = error.extra.get("urls")
        if urls is None:
            version = request.match_info.get("version", "")
            sobject = request.match_info.get("sobject", "")
            urls = [f"/services/data/{version}/sobjects/{sobject}/{i}" for i in error.extra.get("ids", [])]
        return json_response(list(urls), status=300)
    if error.status == 401:
        headers["WWW-Authenticate"] = "Token"
    return json_response([error.to_rest()], status=error.status, headers=headers)
