"""Org and session calls: login, getUserInfo, getServerTimestamp, getUpdated/getDeleted,
setPassword/resetPassword, sendEmail/sendEmailMessage, process (approvals), logout."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ElementTree
from typing import TYPE_CHECKING, Any

from ...core.safexml import local_name
from .. import ids
from ..errors import SalesforceApiError
from ..metadata.validation import format_datetime
from ..rest.approvals import _decide as decide_workitem
from ..rest.approvals import _instances as approval_state
from ..rest.approvals import _submit as submit_for_approval
from ..rest.org import covered, replication_window, reset_password, set_password
from ..web import base_url
from .envelope import text_of
from .ops_data import MAX_WRITE, require_type
from .render import element, error_xml, soap_datetime, spell
from .wsdl_shape import shaped

if TYPE_CHECKING:
    from .routes import SoapCall

#: Salesforce removed login() from API 65.0 on.
LOGIN_REMOVED_FROM = 65.0
#: EmailMessage.Status picklist values: 3 = Sent, 5 = Draft.
SENT, DRAFT = "3", "5"


def _invalid_login() -> SalesforceApiError:
    return SalesforceApiError("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")


def _user_info(call: SoapCall, user: dict[str, Any]) -> dict[str, Any]:
    """GetUserInfoResult, in the partner WSDL's element order."""
    org = call.store.query("SELECT Name FROM Organization", api_version=call.version)["records"]
    return {
        "accessibilityMode": False, "chatterExternal": False, "currencySymbol": "$",
        "orgAttachmentFileSizeLimit": 5242880, "orgDefaultCurrencyIsoCode": "USD",
        "orgDefaultCurrencyLocale": "en_US", "orgDisallowHtmlAttachments": False, "orgHasPersonAccounts": False,
        "organizationId": call.state.org_id, "organizationMultiCurrency": False,
        "organizationName": org[0]["Name"] if org else "", "profileId": user.get("ProfileId"), "roleId": None,
        "sessionSecondsValid": int(call.state.config.session_lifetime_seconds),
        "userDefaultCurrencyIsoCode": None, "userEmail": user.get("Email"), "userFullName": user.get("Name"),
        "userId": user["Id"], "userLanguage": user.get("LanguageLocaleKey") or "en_US",
        "userLocale": user.get("LocaleSidKey") or "en_US", "userName": user.get("Username"),
        "userTimeZone": user.get("TimeZoneSidKey") or "America/Los_Angeles", "userType": user.get("UserType") or "Standard",
        "userUiSkin": "Theme3",
    }


def _password_expired(call: SoapCall, user_id: str) -> bool:
    return bool(call.store.org_extras.get("expired_passwords", {}).get(user_id, False))


def login(call: SoapCall) -> str:
    """``login(username, password)``: LoginResult; removed from API 65.0 (UNSUPPORTED_API_VERSION).
    A ``LoginScopeHeader`` must name this org."""
    if float(call.version) >= LOGIN_REMOVED_FROM:
        raise SalesforceApiError("UNSUPPORTED_API_VERSION",
                                 f"login() is not supported in API version {call.version} and later; "
                                 "use OAuth 2.0 or API version 64.0", status=500)
    username = call.envelope.text("username") or ""
    password = call.envelope.text("password") or ""
    user = call.state.user(username)
    record = call.state.user_record(user.username) if user is not None and user.accepts(password) else None
    # A login scoped to another org (LoginScopeHeader, 15 or 18 character id) finds no such user.
    scope = call.envelope.header_value("LoginScopeHeader", "organizationId")
    if record is None or (scope and not call.state.org_id.startswith(scope.strip())):
        raise _invalid_login()
    session = call.state.sessions.issue(user_id=record["Id"], username=user.username, consumer_key=None,
                                        grant_type="soap_login")
    org15 = call.state.org_id[:15]
    base = base_url(call.request)
    result = {
        "metadataServerUrl": f"{base}/services/Soap/m/{call.version}/{org15}",
        "passwordExpired": _password_expired(call, record["Id"]),
        "sandbox": False,
        "serverUrl": f"{base}/services/Soap/u/{call.version}/{org15}",
        "sessionId": session.token,
        "userId": record["Id"],
    }
    info = shaped("userInfo", "GetUserInfoResult", _user_info(call, record))
    return element("result", result)[: -len("</result>")] + info + "</result>"


def logout(call: SoapCall) -> str:
    """``logout()``: ends the session."""
    if call.session is not None:
        call.state.sessions.revoke(call.session.token)
    return ""


def get_user_info(call: SoapCall) -> str:
    """``getUserInfo()``."""
    user = call.store.retrieve("User", call.user_id or "", api_version=call.version)
    return shaped("result", "GetUserInfoResult", _user_info(call, user))


def get_server_timestamp(call: SoapCall) -> str:
    """``getServerTimestamp()``."""
    now = soap_datetime(format_datetime(dt.datetime.now(dt.timezone.utc)))
    return f"<result><timestamp>{now}</timestamp></result>"


def _changes(call: SoapCall, deleted: bool) -> tuple[list[tuple[str, str]], dt.datetime]:
    obj = require_type(call, call.envelope.text("sObjectType"))
    start, end = replication_window(call.envelope.text("startDate"), call.envelope.text("endDate"))
    return call.store.changed_ids(obj.name, start, end, deleted=deleted), end


def get_updated(call: SoapCall) -> str:
    """``getUpdated(sObjectType, startDate, endDate)``: GetUpdatedResult."""
    rows, end = _changes(call, deleted=False)
    return element("result", {"ids": [rid for rid, _ in rows], "latestDateCovered": soap_datetime(covered(end))})


def get_deleted(call: SoapCall) -> str:
    """``getDeleted(sObjectType, startDate, endDate)``: GetDeletedResult."""
    rows, end = _changes(call, deleted=True)
    return element("result", {"deletedRecords": [{"deletedDate": soap_datetime(stamp), "id": rid}
                                                 for rid, stamp in rows],
                              "earliestDateAvailable": soap_datetime(call.store.org_created_date()),
                              "latestDateCovered": soap_datetime(covered(end))})


def _user_id(call: SoapCall) -> str:
    raw = call.envelope.text("userId") or ""
    normalized = ids.normalize(raw)
    if normalized is None or normalized[:3] != "005":
        raise SalesforceApiError("INVALID_ID_FIELD", f"invalid user id: {raw}")
    try:
        return call.store.retrieve("User", normalized, ["Id"], api_version=call.version)["Id"]
    except SalesforceApiError:
        raise SalesforceApiError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id") from None


def set_password_op(call: SoapCall) -> str:
    """``setPassword(userId, password)``: SetPasswordResult (empty)."""
    set_password(call.store, _user_id(call), call.envelope.text("password"))
    return "<result/>"


def reset_password_op(call: SoapCall) -> str:
    """``resetPassword(userId)``: the generated password."""
    return element("result", {"password": reset_password(call.store, _user_id(call))})


# -- email ----------------------------------------------------------------------------------------


def _list(message: ElementTree.Element, name: str) -> list[str]:
    return [(c.text or "").strip() for c in message if local_name(c.tag) == name and (c.text or "").strip()]


def _send_result(error: SalesforceApiError | None) -> str:
    return f"<result>{error_xml(error) if error else ''}<success>{spell(error is None)}</success></result>"


def _send_one(call: SoapCall, message: ElementTree.Element, user: dict[str, Any]) -> SalesforceApiError | None:
    to, cc, bcc = _list(message, "toAddresses"), _list(message, "ccAddresses"), _list(message, "bccAddresses")
    target = text_of(message, "targetObjectId")
    if not (to or cc or bcc or target):
        return SalesforceApiError("REQUIRED_FIELD_MISSING", "Missing target address (target, to, cc, bcc)")
    what = ids.normalize(text_of(message, "whatId"))
    what_obj = call.store.metadata.by_prefix(what[:3]) if what else None
    related = what if what_obj is not None and what_obj.name in (
        "Account", "Opportunity", "Case", "Campaign", "Contract", "Order", "Asset") else None
    values = {
        "Subject": text_of(message, "subject"), "TextBody": text_of(message, "plainTextBody"),
        "HtmlBody": text_of(message, "htmlBody"), "ToAddress": "; ".join(to) or None,
        "CcAddress": "; ".join(cc) or None, "BccAddress": "; ".join(bcc) or None,
        "FromName": text_of(message, "senderDisplayName") or user.get("Name"), "FromAddress": user.get("Email"),
        "Status": SENT, "Incoming": False, "RelatedToId": related,
        "MessageDate": format_datetime(dt.datetime.now(dt.timezone.utc)),
    }
    try:
        call.store.create("EmailMessage", values, user_id=call.user_id)
    except SalesforceApiError as error:
        return error
    return None


def send_email(call: SoapCall) -> str:
    """``sendEmail(messages[])``: each message is recorded as a sent ``EmailMessage``."""
    messages = call.envelope.children("messages")
    if len(messages) > 10:
        raise SalesforceApiError("LIMIT_EXCEEDED", "Too many messages: at most 10 per sendEmail call")
    user = call.store.retrieve("User", call.user_id or "", api_version=call.version)
    return "".join(_send_result(_send_one(call, m, user)) for m in messages)


def send_email_message(call: SoapCall) -> str:
    """``sendEmailMessage(ids[])``: send draft ``EmailMessage`` records (Status becomes Sent)."""
    out = []
    for raw in call.envelope.texts("ids")[:MAX_WRITE]:
        error = None
        try:
            record = call.store.retrieve("EmailMessage", raw, ["Status"], api_version=call.version)
            if record["Status"] != DRAFT:
                error = SalesforceApiError("INVALID_STATUS", "Only draft email messages can be sent")
            else:
                call.store.update("EmailMessage", raw, {"Status": SENT}, user_id=call.user_id)
        except SalesforceApiError:
            error = SalesforceApiError("INVALID_ID_FIELD", f"invalid email message id: {raw}")
        out.append(_send_result(error))
    return "".join(out)


# -- approvals --------------------------------------------------------------------------------------

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def _process_item(action: ElementTree.Element) -> dict[str, Any]:
    """A ProcessSubmitRequest / ProcessWorkitemRequest as the REST approvals helper's request item."""
    kind = (action.get(_XSI_TYPE) or "").rsplit(":", 1)[-1]
    approvers = _list(action, "nextApproverIds")
    if kind == "ProcessSubmitRequest" or text_of(action, "objectId") is not None:
        return {"actionType": "Submit", "contextId": text_of(action, "objectId"), "nextApproverIds": approvers,
                "comments": text_of(action, "comments"),
                "processDefinitionNameOrId": text_of(action, "processDefinitionNameOrId")}
    return {"actionType": text_of(action, "action"), "contextId": text_of(action, "workitemId"),
            "comments": text_of(action, "comments")}


def process(call: SoapCall) -> str:
    """``process(actions[])``: submit, approve, reject or remove, as the REST approvals resource."""
    out = []
    with call.store.lock:
        state = approval_state(call.request)
        for action in call.envelope.children("actions"):
            item = _process_item(action)
            if item["actionType"] not in ("Submit", "Approve", "Reject", "Removed"):
                raise SalesforceApiError("INVALID_OPERATION", f"Invalid action: {item['actionType']}")
            result = (submit_for_approval(call.request, item, state) if item["actionType"] == "Submit"
                      else decide_workitem(item, state))
            errors = [SalesforceApiError(e["statusCode"], e["message"]) for e in result.get("errors") or []]
            body = {k: result.get(k) for k in ("actorIds", "entityId")}
            out.append(f"<result>{element('actorIds', body['actorIds'] or [])}{element('entityId', body['entityId'])}"
                       f"{''.join(error_xml(e) for e in errors)}{element('instanceId', result.get('instanceId'))}"
                       f"{element('instanceStatus', result.get('instanceStatus'))}"
                       f"{element('newWorkitemIds', result.get('newWorkitemIds') or [])}"
                       f"<success>{spell(bool(result.get('success')))}</success></result>")
    return "".join(out)


OPERATIONS = {"login": login, "logout": logout, "getUserInfo": get_user_info,
              "getServerTimestamp": get_server_timestamp, "getUpdated": get_updated, "getDeleted": get_deleted,
              "setPassword": set_password_op, "resetPassword": reset_password_op, "sendEmail": send_email,
              "sendEmailMessage": send_email_message, "process": process}
