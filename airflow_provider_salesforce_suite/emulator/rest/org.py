"""Org resources of the REST API: record counts, replication (updated/deleted), recent items,
user passwords and process rules."""

from __future__ import annotations

import datetime as dt
import secrets
import string

from aiohttp import web

from ..errors import SalesforceApiError
from ..metadata.validation import format_datetime, parse_datetime
from ..web import json_response, no_content, read_json, state_of
from .versions import parse_version

#: How far back replication windows may start, and how long one may be (Salesforce's 30 days).
REPLICATION_DAYS = 30
DEFAULT_RECENT = 200


async def record_counts(request: web.Request) -> web.Response:
    """``GET .../limits/recordCount?sObjects=Account,Contact``."""
    parse_version(request.match_info["version"])
    names = [n.strip() for n in request.query.get("sObjects", "").split(",") if n.strip()]
    store = state_of(request).store
    for name in names:
        if store.metadata.get(name) is None:
            raise SalesforceApiError("INVALID_TYPE", f"sObject type '{name}' is not supported.")
    return json_response(store.record_counts(names or None))


def _window(request: web.Request) -> tuple[dt.datetime, dt.datetime]:
    return replication_window(request.query.get("start"), request.query.get("end"))


def replication_window(start_raw: str | None, end_raw: str | None) -> tuple[dt.datetime, dt.datetime]:
    """The checked ``[start, end)`` window of a replication call (REST updated/deleted, SOAP getUpdated).

    :param start_raw: the start date-time text.
    :param end_raw: the end date-time text.
    :raises SalesforceApiError: ``MISSING_ARGUMENT`` or ``INVALID_REPLICATION_DATE``.
    """
    values = []
    for name, raw in (("start", start_raw), ("end", end_raw)):
        if not raw:
            raise SalesforceApiError("MISSING_ARGUMENT", f"Missing required parameter: {name}")
        parsed = parse_datetime(raw)
        if parsed is None:
            raise SalesforceApiError("INVALID_REPLICATION_DATE", f"Unable to parse {name} date: {raw}")
        values.append(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc))
    start, end = values
    now = dt.datetime.now(dt.timezone.utc)
    if start >= end:
        raise SalesforceApiError("INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
    if start < now - dt.timedelta(days=REPLICATION_DAYS):
        raise SalesforceApiError("INVALID_REPLICATION_DATE",
                                 f"startDate cannot be more than {REPLICATION_DAYS} days ago")
    if end - start > dt.timedelta(days=REPLICATION_DAYS):
        raise SalesforceApiError("INVALID_REPLICATION_DATE",
                                 f"The range between startDate and endDate cannot exceed {REPLICATION_DAYS} days")
    # Salesforce ignores seconds. The window reaches past "now" (so just-written records show),
    # while latestDateCovered never does: a replicator's next window overlaps, never skips.
    return start.replace(second=0, microsecond=0), end.replace(second=0, microsecond=0)


def covered(end: dt.datetime) -> str:
    """``latestDateCovered``: the window end, never past now (minute precision).

    :param end: the window end.
    """
    return format_datetime(min(end, dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)))


async def _changes(request: web.Request, *, deleted: bool) -> tuple[list[tuple[str, str]], dt.datetime]:
    parse_version(request.match_info["version"])
    store = state_of(request).store
    store.metadata.require(request.match_info["sobject"])
    start, end = _window(request)
    return store.changed_ids(request.match_info["sobject"], start, end, deleted=deleted), end


async def updated(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/updated/?start=&end=``: ``{"ids", "latestDateCovered"}``."""
    rows, end = await _changes(request, deleted=False)
    return json_response({"ids": [rid for rid, _ in rows], "latestDateCovered": covered(end)})


async def deleted(request: web.Request) -> web.Response:
    """``GET .../sobjects/{sobject}/deleted/?start=&end=``."""
    rows, end = await _changes(request, deleted=True)
    return json_response({
        "deletedRecords": [{"id": rid, "deletedDate": stamp} for rid, stamp in rows],
        "earliestDateAvailable": state_of(request).store.org_created_date(),
        "latestDateCovered": covered(end),
    })


async def recent(request: web.Request) -> web.Response:
    """``GET .../recent/?limit=n``: records most recently created or modified through an API."""
    version = parse_version(request.match_info["version"])
    raw = request.query.get("limit")
    try:
        limit = DEFAULT_RECENT if raw is None else int(raw)
    except ValueError:
        raise SalesforceApiError("INVALID_QUERY_PARAMETER_VALUE", f"Invalid limit: {raw}") from None
    if not 1 <= limit <= DEFAULT_RECENT:
        raise SalesforceApiError("INVALID_QUERY_PARAMETER_VALUE", f"limit must be between 1 and {DEFAULT_RECENT}")
    return json_response(state_of(request).store.recent_items(limit, api_version=version))


# -- user passwords -----------------------------------------------------------------------------


def _user_id(request: web.Request) -> str:
    version = parse_version(request.match_info["version"])
    return state_of(request).store.retrieve("User", request.match_info["user_id"], ["Id"], api_version=version)["Id"]


def _expired(request: web.Request) -> dict[str, bool]:
    return state_of(request).store.org_extras.setdefault("expired_passwords", {})


async def password(request: web.Request) -> web.Response:
    """``GET|POST|DELETE .../sobjects/User/{id}/password``.

    GET: ``{"isExpired": bool}``; POST ``{"NewPassword"}``: 204; DELETE: reset, answers the generated
    password and expires it. Passwords are recorded per user; logins keep the configured credentials.
    """
    user_id = _user_id(request)
    store = state_of(request).store
    if request.method == "GET":
        return json_response({"isExpired": _expired(request).get(user_id, False)})
    if request.method == "DELETE":
        return json_response({"NewPassword": reset_password(store, user_id)})
    body = await read_json(request)
    set_password(store, user_id, body.get("NewPassword") if isinstance(body, dict) else None)
    return no_content()


def reset_password(store, user_id: str) -> str:
    """Generate a new password for a user and mark it expired (REST DELETE, SOAP resetPassword).

    :param store: the store (its org extras hold the expiry flags).
    :param user_id: the ``User`` id.
    :returns: the generated password.
    """
    alphabet = string.ascii_letters + string.digits
    generated = "".join(secrets.choice(alphabet) for _ in range(10)) + secrets.choice(string.digits)
    store.org_extras.setdefault("expired_passwords", {})[user_id] = True
    return generated


def set_password(store, user_id: str, new: object) -> None:
    """Check a new password against the org's policy and record it (REST POST, SOAP setPassword).

    :param store: the store.
    :param user_id: the ``User`` id.
    :param new: the new password.
    :raises SalesforceApiError: ``REQUIRED_FIELD_MISSING`` or ``INVALID_NEW_PASSWORD``.
    """
    if not isinstance(new, str) or not new:
        raise SalesforceApiError("REQUIRED_FIELD_MISSING", "Required fields are missing: [NewPassword]",
                                 fields=["NewPassword"])
    if len(new) < 8 or not any(c.isalpha() for c in new) or not any(c.isdigit() for c in new):
        raise SalesforceApiError("INVALID_NEW_PASSWORD",
                                 "Your password must be at least 8 characters long and have a mix of letters "
                                 "and numbers.")
    store.org_extras.setdefault("expired_passwords", {})[user_id] = False


async def required_list(request: web.Request, key: str) -> list:
    """The non-empty JSON list under ``key`` of the request body, or ``REQUIRED_FIELD_MISSING``.

    :param request: the request (its API version is checked too).
    :param key: the body key.
    """
    parse_version(request.match_info["version"])
    body = await read_json(request)
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise SalesforceApiError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{key}]", fields=[key])
    return items


# -- process rules ------------------------------------------------------------------------------

#: The org's workflow rules (one per object), in the shape ``/process/rules`` lists.
PROCESS_RULES = {
    "Account": [{"actions": [{"id": "01VD0000000D2w7", "name": "ApprovalProcessTask", "type": "Task"}],
                 "description": None, "id": "01QD0000000APli", "name": "Account Review Rule",
                 "namespacePrefix": None, "object": "Account"}],
    "Opportunity": [{"actions": [{"id": "01VD0000000D2w8", "name": "NotifyOwner", "type": "FieldUpdate"}],
                     "description": None, "id": "01QD0000000APlj", "name": "Opportunity Stage Rule",
                     "namespacePrefix": None, "object": "Opportunity"}],
}


async def process_rules(request: web.Request) -> web.Response:
    """``GET .../process/rules`` and ``.../process/rules/{sobject}``."""
    parse_version(request.match_info["version"])
    sobject = request.match_info.get("sobject")
    if sobject is None:
        return json_response({"rules": PROCESS_RULES})
    name = state_of(request).store.metadata.require(sobject).name
    return json_response({"rules": {name: PROCESS_RULES.get(name, [])}} if name in PROCESS_RULES else {"rules": {}})


async def trigger_process_rules(request: web.Request) -> web.Response:
    """``POST .../process/rules`` ``{"contextIds": [...]}``: evaluate rules for those records."""
    context_ids = await required_list(request, "contextIds")
    store = state_of(request).store
    for context_id in context_ids:
        obj = store.metadata.by_prefix(str(context_id)[:3])
        if obj is None:
            raise SalesforceApiError("INVALID_ID_FIELD", f"Invalid ID: {context_id}")
        store.retrieve(obj.name, str(context_id), ["Id"], api_version="64.0")
    return json_response({"errors": None, "success": True})
