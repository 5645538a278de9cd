"""Routes of the REST API (``/services/data``); a trailing slash is optional, as on Salesforce."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..auth import bearer_session
from ..web import add_route_table, ApiSurface, register_surface
from ..wire import REST_HEADERS
from . import collections, composite, handlers
from . import apexrest
from .render import render_rest_error
from .search_org_routes import search_org_routes

if TYPE_CHECKING:
    from ..state import EmulatorState

PREFIX = "/services/data"
_V = PREFIX + r"/{version:v[0-9]+\.[0-9]+}"
_SLASH = "{slash:/?}"



def _table() -> list[tuple[str, dict]]:
    h = handlers
    return [
        ("", {"GET": h.resources}),
        ("/limits", {"GET": h.limits}),
        *search_org_routes(),
        ("/queryAll", {"GET": h.query_all}),
        ("/query/{locator}", {"GET": h.query_more}),
        ("/queryAll/{locator}", {"GET": h.query_more}),
        ("/sobjects", {"GET": h.describe_global}),
        ("/sobjects/{sobject}", {"GET": h.sobject_info, "POST": h.create}),
        ("/sobjects/{sobject}/describe", {"GET": h.describe}),
        *search_org_routes(sobject_scoped=True),
        ("/sobjects/{sobject}/{record_id}", {"GET": h.retrieve, "PATCH": h.update, "DELETE": h.delete}),
        (
            "/sobjects/{sobject}/{field}/{value}",
            {"GET": collections.related_or_external_id, "PATCH": h.upsert, "DELETE": h.delete_by_external_id},
        ),
        # -- records & composite: sObject Collections, composite, batch, graph, tree
        ("/composite", {"POST": composite.composite}),
        ("/composite/batch", {"POST": composite.batch}),
        ("/composite/graph", {"POST": composite.graph}),
        ("/composite/tree/{sobject}", {"POST": composite.tree}),
        (
            "/composite/sobjects",
            {"POST": collections.create, "PATCH": collections.update, "DELETE": collections.delete},
        ),
        ("/composite/sobjects/{sobject}", {"GET": collections.retrieve, "POST": collections.retrieve_post}),
        ("/composite/sobjects/{sobject}/{field}", {"PATCH": collections.upsert}),
    ]


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the REST API's routes and register its surface.

    :param app: the emulator application.
    :param state: the emulator state (unused here; handlers reach it through the request).
    """
    versions = app.router.add_resource(PREFIX + _SLASH)
    versions.add_route("GET", handlers.versions)
    add_route_table(app, _V, _table(), _SLASH)
    apexrest.register(app)
    register_surface(
        app,
        ApiSurface(
            name="rest",
            prefix=PREFIX,
            render_error=render_rest_error,
            authenticate=bearer_session,
            public_paths=frozenset({PREFIX}),
            counts_api_usage=True,
            wire=REST_HEADERS,
        ),
    )
