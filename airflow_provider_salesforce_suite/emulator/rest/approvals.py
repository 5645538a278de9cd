"""Approvals: ``GET .../process/approvals`` lists the processes, ``POST`` submits, approves, rejects.

The org has one approval process per object in :data:`APPROVAL_PROCESSES` (an Account review and
an Opportunity discount approval). A submit opens an instance with one pending work item for the
next approver (the first ``nextApproverIds``, else the submitting user); approving or rejecting that
work item (its id is the ``contextId``) closes the instance.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import SalesforceApiError
from ..ids import normalize, to_18
from ..web import json_response, session_of, state_of
from .org import required_list
from .versions import parse_version

APPROVAL_PROCESSES: dict[str, list[dict[str, Any]]] = {
    "Account": [{"description": "Review of new key accounts", "id": "04aD0000000Cmn1IAC",
                 "name": "Account_Review", "object": "Account", "sortOrder": 1}],
    "Opportunity": [{"description": "Discounts above 20%", "id": "04aD0000000Cmn2IAC",
                     "name": "Opportunity_Discount_Approval", "object": "Opportunity", "sortOrder": 1}],
}
_ACTIONS = ("Submit", "Approve", "Reject", "Removed")


def _instances(request: web.Request) -> dict[str, Any]:
    return state_of(request).store.org_extras.setdefault("approvals", {"instances": {}, "workitems": {}, "n": 0})


async def approvals(request: web.Request) -> web.Response:
    """``GET .../process/approvals/``: ``{"approvals": {"Account": [...]}}``."""
    parse_version(request.match_info["version"])
    return json_response({"approvals": APPROVAL_PROCESSES})


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "statusCode": code}], "success": False}


def _submit(request: web.Request, item: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    store = state_of(request).store
    record_id = normalize(item.get("contextId"))
    obj = store.metadata.by_prefix(record_id[:3]) if record_id else None
    if obj is None:
        return _failure("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
    try:
        store.retrieve(obj.name, record_id, ["Id"], api_version="64.0")
    except SalesforceApiError:
        return _failure("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
    processes = APPROVAL_PROCESSES.get(obj.name, [])
    wanted = item.get("processDefinitionNameOrId")
    if wanted:
        processes = [p for p in processes if wanted in (p["name"], p["id"], p["id"][:15])]
    if not processes:
        return _failure("NO_APPLICABLE_PROCESS", "No applicable approval process was found.")
    if any(i["entityId"] == record_id and i["status"] == "Pending" for i in state["instances"].values()):
        return _failure("ALREADY_IN_PROCESS", "Cannot submit object already in process.")
    approvers = item.get("nextApproverIds") or [item.get("contextActorId") or session_of(request).user_id]
    state["n"] += 2
    instance_id, workitem_id = to_18(f"04g{state['n']:012d}"), to_18(f"04i{state['n'] + 1:012d}")
    state["instances"][instance_id] = {"entityId": record_id, "status": "Pending", "actorIds": list(approvers)}
    state["workitems"][workitem_id] = instance_id
    return {"actorIds": list(approvers), "entityId": record_id, "errors": None, "instanceId": instance_id,
            "instanceStatus": "Pending", "newWorkitemIds": [workitem_id], "success": True}


def _decide(item: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    workitem_id = normalize(item.get("contextId"))
    instance_id = state["workitems"].pop(workitem_id, None) if workitem_id else None
    if instance_id is None:
        return _failure("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
    instance = state["instances"][instance_id]
    instance["status"] = {"Approve": "Approved", "Reject": "Rejected", "Removed": "Removed"}[item["actionType"]]
    return {"actorIds": instance["actorIds"], "entityId": instance["entityId"], "errors": None,
            "instanceId": instance_id, "instanceStatus": instance["status"], "newWorkitemIds": [], "success": True}


async def submit(request: web.Request) -> web.Response:
    """``POST .../process/approvals/`` ``{"requests": [{"actionType", "contextId", "comments", ...}]}``."""
    requests = await required_list(request, "requests")
    results = []
    with state_of(request).store.lock:
        state = _instances(request)
        for item in requests:
            action = item.get("actionType") if isinstance(item, dict) else None
            if action not in _ACTIONS:
                raise SalesforceApiError("INVALID_OPERATION", f"Invalid actionType: {action}. "
                                         f"Valid values are {', '.join(_ACTIONS)}")
            results.append(_submit(request, item, state) if action == "Submit" else _decide(item, state))
    # One failed request fails the call: Salesforce answers 400 with the REST error list.
    failed = next((r for r in results if not r["success"]), None)
    if failed is not None:
        error = failed["errors"][0]
        raise SalesforceApiError(error["statusCode"], error["message"])
    return json_response(results)
