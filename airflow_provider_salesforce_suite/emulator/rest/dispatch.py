"""In-process dispatch of composite subrequests to the very handlers that serve the REST routes.

A :class:`SubRequest` looks to a handler like an :class:`aiohttp.web.Request` (method, URL, query,
headers, JSON body, the parent's session and app), and is resolved by the application's own
router, so a subrequest can never behave differently from the same call made directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ..errors import SalesforceApiError
from ..web import SESSION
from ..wire import record_location
from .render import render_rest_error


class SubRequest:
    """A subrequest, shaped like the parts of ``web.Request`` the REST handlers use.

    :param parent: the composite request it belongs to (session, app, host).
    :param method: HTTP method.
    :param url: path with optional query string (``/services/data/v62.0/sobjects/Account``).
    :param body: the JSON body (``None``: no body).
    :param headers: the subrequest's own headers.
    """

    def __init__(self, parent: web.Request, method: str, url: str, body: Any = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.method = method.upper()
        self.rel_url = URL(url)
        self.path = self.rel_url.path
        self.query = self.rel_url.query
        self.headers = CIMultiDictProxy(CIMultiDict(headers or {}))
        self.app = parent.app
        self.scheme = parent.scheme
        self.host = parent.host
        self.transport = None
        self.match_info: Mapping[str, str] = {}
        self._body = body
        self._keys: dict[Any, Any] = {SESSION: parent[SESSION]}

    async def text(self) -> str:
        """The body as JSON text, as ``web.Request.text`` gives it."""
        return "" if self._body is None else json.dumps(self._body)

    def __getitem__(self, key: Any) -> Any:
        return self._keys[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._keys[key] = value

    def get(self, key: Any, default: Any = None) -> Any:
        """``request.get(key)`` of a request key."""
        return self._keys.get(key, default)


@dataclass
class SubResponse:
    """What a subrequest answered.

    :param status: HTTP status.
    :param headers: response headers worth reporting (``Location``).
    :param body: the parsed JSON body (``None`` for 204).
    """

    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300


def _read(response: web.StreamResponse) -> SubResponse:
    raw = getattr(response, "body", None)
    body = json.loads(raw) if isinstance(raw, (bytes, bytearray)) and raw else None
    headers = {k: v for k, v in response.headers.items() if k.lower() == "location"}
    return SubResponse(response.status, headers, body)


async def dispatch(parent: web.Request, method: str, url: str, body: Any = None,
                   headers: Mapping[str, str] | None = None) -> SubResponse:
    """Run one subrequest through the application's router and REST handlers.

    :param parent: the composite request.
    :param method: HTTP method.
    :param url: ``/services/data/vXX.X/...`` path with optional query string.
    :param body: JSON body.
    :param headers: subrequest headers.
    """
    sub = SubRequest(parent, method, url, body, headers)
    match = await parent.app.router.resolve(sub)  # type: ignore[arg-type]
    sub.match_info = match
    try:
        exc = match.http_exception
    except AttributeError:
        exc = None
    try:
        if exc is not None:
            raise exc
        response = await match.handler(sub)  # type: ignore[arg-type]
    except SalesforceApiError as error:
        response = render_rest_error(sub, error)  # type: ignore[arg-type]
    except web.HTTPException as error:
        from ..app import _http_error  # the one HTTP-error mapping; imported late (app imports rest)

        response = render_rest_error(sub, _http_error(sub, error))  # type: ignore[arg-type]
    result = _read(response)
    if result.status == 201 and isinstance(result.body, dict) and result.body.get("id") and sub.method == "POST":
        result.headers.setdefault("Location", record_location(sub.path, result.body["id"]))
    return result
