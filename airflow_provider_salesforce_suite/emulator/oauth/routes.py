"""Routes of the OAuth endpoints and the identity service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..web import ApiSurface, register_surface
from ..wire import OAUTH_HEADERS
from . import handlers
from .render import render_identity_error, render_oauth_error

if TYPE_CHECKING:
    from ..state import EmulatorState

PREFIX = "/services/oauth2"
IDENTITY_PREFIX = "/id"


def routes(app: web.Application, state: EmulatorState) -> None:
    """Add the OAuth and identity routes and register their surfaces.

    :param app: the emulator application.
    :param state: the emulator state.
    """
    app.router.add_post(PREFIX + "/token", handlers.token)
    revoke = app.router.add_resource(PREFIX + "/revoke")
    revoke.add_route("POST", handlers.revoke)
    revoke.add_route("GET", handlers.revoke)
    userinfo = app.router.add_resource(PREFIX + "/userinfo")
    userinfo.add_route("GET", handlers.userinfo)
    userinfo.add_route("POST", handlers.userinfo)
    app.router.add_get(IDENTITY_PREFIX + "/{org_id}/{user_id}", handlers.identity)
    # Handlers authenticate themselves: the token endpoint has no session, and the identity
    # service answers a bad token with 403 Bad_OAuth_Token rather than INVALID_SESSION_ID.
    register_surface(app, ApiSurface(name="oauth", prefix=PREFIX, render_error=render_oauth_error,
                                     wire=OAUTH_HEADERS))
    register_surface(app, ApiSurface(name="identity", prefix=IDENTITY_PREFIX, render_error=render_identity_error))
    # userinfo is the identity service behind an OAuth path: same bare-text errors.
    register_surface(app, ApiSurface(name="identity", prefix=PREFIX + "/userinfo", render_error=render_identity_error))
