"""Quick actions: ``quickActions``, ``sobjects/{obj}/quickActions``, ``.../{action}``, ``.../describe``.

Every action is a Create action. Global actions create a Task, Contact or Case; each object also
has ``<Object>.New<Child>`` actions for its Contact, Case and Opportunity children, which set the
child's lookup to the invocation's ``contextId``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..errors import SalesforceApiError
from ..metadata.describe import version_path
from ..metadata.model import Metadata, ObjectDef
from ..web import json_response, read_json, session_of, state_of
from .versions import parse_version

_GLOBAL = (("NewTask", "New Task", "Task"), ("LogACall", "Log a Call", "Task"),
           ("NewContact", "New Contact", "Contact"), ("NewCase", "New Case", "Case"))
_CHILD_TARGETS = ("Contact", "Case", "Opportunity")


@dataclass(frozen=True)
class QuickAction:
    """One Create quick action.

    :param name: API name (``NewTask``, ``Account.NewContact``).
    :param label: label.
    :param target: the object it creates.
    :param parent_field: the target's lookup set to the context record (object actions only).
    :param context: the object it belongs to (``None``: global).
    """

    name: str
    label: str
    target: str
    parent_field: str | None = None
    context: str | None = None


def actions_for(metadata: Metadata, obj: ObjectDef | None) -> list[QuickAction]:
    """Global actions, plus ``obj``'s own actions when given.

    :param metadata: the org's metadata.
    :param obj: the context object, or ``None`` for global actions only.
    """
    actions = [QuickAction(n, label, t) for n, label, t in _GLOBAL if metadata.get(t)]
    if obj is not None:
        for target in _CHILD_TARGETS:
            child = metadata.get(target)
            rel = next((r for r in obj.child_relationships if r.child_sobject == target), None)
            if child is not None and rel is not None:
                actions.append(QuickAction(f"{obj.name}.New{target}", f"New {child.label}", target, rel.field, obj.name))
    return actions


def _base(request: web.Request) -> tuple[str, ObjectDef | None]:
    version = parse_version(request.match_info["version"])
    sobject = request.match_info.get("sobject")
    obj = state_of(request).store.metadata.require(sobject) if sobject else None
    prefix = f"{version_path(version)}/sobjects/{obj.name}" if obj else version_path(version)
    return prefix + "/quickActions", obj


def _find(request: web.Request) -> tuple[QuickAction, ObjectDef | None, str]:
    base, obj = _base(request)
    wanted = request.match_info["action"].lower()
    action = next((a for a in actions_for(state_of(request).store.metadata, obj) if a.name.lower() == wanted), None)
    if action is None:
        raise SalesforceApiError("NOT_FOUND", "The requested resource does not exist", status=404)
    return action, obj, base


def _summary(action: QuickAction, base: str) -> dict[str, Any]:
    url = f"{base}/{action.name}"
    return {"actionEnumOrId": action.name, "label": action.label, "name": action.name, "type": "Create",
            "urls": {"defaultValues": f"{url}/defaultValues", "quickAction": url, "describe": f"{url}/describe",
                     "defaultValuesTemplate": f"{url}/defaultValues/{{ID}}"}}


async def list_actions(request: web.Request) -> web.Response:
    """``GET .../quickActions`` and ``.../sobjects/{sobject}/quickActions``."""
    base, obj = _base(request)
    return json_response([_summary(a, base) for a in actions_for(state_of(request).store.metadata, obj)])


async def describe_action(request: web.Request) -> web.Response:
    """``GET .../quickActions/{action}/describe`` (global or object)."""
    action, obj, _ = _find(request)
    return json_response({
        "accessLevelRequired": None, "canvasApplicationName": None, "colors": [], "contextSobjectType": action.context,
        "defaultValues": [], "height": None, "iconUrl": None, "icons": [], "label": action.label,
        "layout": None, "miniIconUrl": None, "name": action.name, "showQuickActionVfHeader": False,
        "targetParentField": action.parent_field, "targetRecordTypeId": None, "targetSobjectType": action.target,
        "type": "Create", "visualforcePageName": None, "width": None,
    })


async def action(request: web.Request) -> web.Response:
    """``GET`` (summary) or ``POST`` (invoke: ``{"contextId", "record"}``) a quick action."""
    quick, obj, base = _find(request)
    if request.method == "GET":
        return json_response(_summary(quick, base))
    body = await read_json(request)
    if not isinstance(body, dict):
        raise SalesforceApiError("JSON_PARSER_ERROR", "The request body must be a JSON object")
    record = dict(body.get("record") or {})
    record.pop("attributes", None)
    context_id = body.get("contextId")
    store = state_of(request).store
    if quick.parent_field:
        if not context_id:
            raise SalesforceApiError("REQUIRED_FIELD_MISSING", "Required fields are missing: [contextId]",
                                     fields=["contextId"])
        store.retrieve(obj.name, context_id, ["Id"], api_version="64.0")
        record[quick.parent_field] = context_id
    record_id = store.create(quick.target, record, user_id=session_of(request).user_id)
    return json_response({"contextId": context_id, "created": True, "errors": [], "feedItemIds": None,
                          "id": record_id, "success": True}, status=201)
