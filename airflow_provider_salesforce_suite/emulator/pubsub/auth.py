"""Who is calling: the ``accesstoken`` / ``instanceurl`` / ``tenantid`` metadata of every RPC."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .wire import AUTH_ERROR, AUTH_HEADERS_INVALID, PubSubFault

if TYPE_CHECKING:
    from ..sessions import Session
    from ..state import EmulatorState

HEADERS = ("accesstoken", "instanceurl", "tenantid")


def authenticate(state: EmulatorState, metadata: Iterable[tuple[str, str | bytes]]) -> Session:
    """The live session behind an RPC's metadata.

    :param state: the emulator state (its sessions and org id).
    :param metadata: the call's invocation metadata.
    :raises PubSubFault: ``UNAUTHENTICATED`` for a missing header or an unknown, revoked or expired
        token; ``PERMISSION_DENIED`` for a ``tenantid`` that is not this org's (15 or 18 characters).
    """
    headers = {key.lower(): value for key, value in metadata if isinstance(value, str)}
    missing = [name for name in HEADERS if not headers.get(name, "").strip()]
    if missing:
        raise PubSubFault("UNAUTHENTICATED", AUTH_HEADERS_INVALID,
                          f"Authentication headers missing or blank: {', '.join(missing)}.")
    session = state.session(headers["accesstoken"].strip())
    if session is None:
        raise PubSubFault("UNAUTHENTICATED", AUTH_ERROR,
                          "An authentication exception occurred. Provide valid authentication via metadata headers.")
    tenant = headers["tenantid"].strip()
    if tenant not in (state.org_id, state.org_id[:15]):
        raise PubSubFault("PERMISSION_DENIED", AUTH_ERROR,
                          f"The tenantid {tenant} does not match the org of the access token.")
    return session
