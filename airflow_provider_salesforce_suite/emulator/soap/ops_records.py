"""Record calls beyond CRUD: merge, convertLead, findDuplicates and findDuplicatesByIds.

Duplicate matching is one simple rule per object (documented in ``docs``): Accounts match on the
same Name, Contacts and Leads on the same Email, case-insensitively; other objects have no rule.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ElementTree
from typing import TYPE_CHECKING, Any

from .. import ids
from ..errors import SalesforceApiError
from .envelope import parse_sobject, text_of
from .ops_data import MAX_WRITE, require_type
from .render import element, error_xml, sobject, spell

if TYPE_CHECKING:
    from .routes import SoapCall

MERGEABLE = frozenset({"Account", "Contact", "Lead", "Case"})
MAX_MERGED = 2
#: object -> (duplicate rule name, the field that must match).
DUPLICATE_RULES = {"Account": ("Standard_Account_Duplicate_Rule", "Name"),
                   "Contact": ("Standard_Contact_Duplicate_Rule", "Email"),
                   "Lead": ("Standard_Lead_Duplicate_Rule", "Email")}


class _Failed(Exception):
    def __init__(self, error: SalesforceApiError) -> None:
        super().__init__(error.message)
        self.error = error


def _soql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ids_where(call: SoapCall, sobject_name: str, field: str, values: list[str]) -> list[str]:
    soql = f"SELECT Id FROM {sobject_name} WHERE {field} IN ({', '.join(map(_soql_literal, values))})"
    return [r["Id"] for r in call.store.query(soql, api_version=call.version)["records"]]


# -- merge ----------------------------------------------------------------------------------------


def _merge_one(call: SoapCall, request: ElementTree.Element) -> dict[str, Any]:
    master_el = next((c for c in request if c.tag.endswith("masterRecord")), None)
    if master_el is None:
        raise _Failed(SalesforceApiError("REQUIRED_FIELD_MISSING", "masterRecord is required"))
    sobject_type, values, to_null = parse_sobject(master_el)
    obj = require_type(call, sobject_type)
    if obj.name not in MERGEABLE:
        raise _Failed(SalesforceApiError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be merged: {obj.label}"))
    master_id = ids.normalize(values.pop("Id", None))
    others = [ids.normalize(t) for t in (c.text or "" for c in request if c.tag.endswith("recordToMergeIds"))]
    if not others or len(others) > MAX_MERGED:
        raise _Failed(SalesforceApiError("INVALID_ARGUMENT_TYPE" if not others else "LIMIT_EXCEEDED",
                                         f"A merge request takes 1 to {MAX_MERGED} records to merge"))
    for rid in [master_id, *others]:
        if rid is None or rid[:3] != obj.key_prefix:
            raise _Failed(SalesforceApiError("INVALID_ID_FIELD", f"invalid record id for {obj.name}"))
        call.store.retrieve(obj.name, rid, ["Id"], api_version=call.version)  # NOT_FOUND when gone
    if master_id in others:
        raise _Failed(SalesforceApiError("INVALID_ID_FIELD", "The master record cannot be merged into itself"))
    updated: list[str] = []
    for other in call.store.metadata.objects.values():
        for fdef in other.fields.values():
            if fdef.type != "reference" or obj.name not in fdef.reference_to:
                continue
            try:
                children = _ids_where(call, other.name, fdef.name, others)
            except SalesforceApiError:
                continue  # not queryable by SOQL here
            for child in children:
                call.store.system_update(other.name, child, {fdef.name: master_id}, user_id=call.user_id)
                updated.append(child)
    for name in to_null:
        values[name] = None
    if values:
        call.store.update(obj.name, master_id, values, user_id=call.user_id)
    for rid in others:
        call.store.delete(obj.name, rid)
    return {"id": master_id, "mergedRecordIds": others, "success": True, "updatedRelatedIds": updated}


def merge(call: SoapCall) -> str:
    """``merge(request[])``: reparent the others' children to the master, delete the others."""
    out = []
    for request in call.envelope.children("request")[:MAX_WRITE]:
        try:
            with call.store.transaction():
                result = _merge_one(call, request)
        except (_Failed, SalesforceApiError) as exc:
            error = exc.error if isinstance(exc, _Failed) else exc
            if error.error_code == "NOT_FOUND":
                error = SalesforceApiError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            if error.error_code == "INVALID_TYPE":
                raise
            out.append(f"<result>{error_xml(error)}<id xsi:nil=\"true\"/><success>false</success></result>")
            continue
        out.append(f"<result>{element('id', result['id'])}{element('mergedRecordIds', result['mergedRecordIds'])}"
                   f"<success>true</success>{element('updatedRelatedIds', result['updatedRelatedIds'])}</result>")
    return "".join(out)


# -- convertLead ------------------------------------------------------------------------------------


def _converted_status(call: SoapCall, status: str) -> str:
    """The LeadStatus value (API name) a convertedStatus names; it must be one with IsConverted = true.

    Salesforce answers ``INVALID_STATUS``, "invalid convertedStatus: <value>", on field ``Status``.
    """
    soql = "SELECT ApiName FROM LeadStatus WHERE IsConverted = true"
    converted = {r["ApiName"].lower(): r["ApiName"] for r in call.store.query(soql, api_version=call.version)["records"]}
    canonical = converted.get(status.lower())
    if canonical is None:
        raise _Failed(SalesforceApiError("INVALID_STATUS", f"invalid convertedStatus: {status}", fields=["Status"]))
    return canonical


def _first_open_stage(call: SoapCall) -> str:
    """The stage a converted lead's new opportunity starts in: the first open one of the stage list."""
    soql = "SELECT ApiName FROM OpportunityStage WHERE IsActive = true AND IsClosed = false ORDER BY SortOrder LIMIT 1"
    records = call.store.query(soql, api_version=call.version)["records"]
    if not records:
        raise _Failed(SalesforceApiError("INVALID_STATUS", "no open opportunity stage is active", fields=["StageName"]))
    return records[0]["ApiName"]


def _convert_one(call: SoapCall, spec: ElementTree.Element) -> dict[str, Any]:
    store, user = call.store, call.user_id
    lead_id = text_of(spec, "leadId") or ""
    status = text_of(spec, "convertedStatus")
    if not status:
        raise _Failed(SalesforceApiError("REQUIRED_FIELD_MISSING", "Required fields are missing: [ConvertedStatus]",
                                         fields=["ConvertedStatus"]))
    try:
        lead = store.retrieve("Lead", lead_id, api_version=call.version)
    except SalesforceApiError:
        raise _Failed(SalesforceApiError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")) from None
    if lead.get("IsConverted"):
        raise _Failed(SalesforceApiError("CANNOT_UPDATE_CONVERTED_LEAD", "This lead was already converted."))
    status = _converted_status(call, status)
    account_id = text_of(spec, "accountId") or store.create(
        "Account", {"Name": lead.get("Company") or lead.get("Name"), "Industry": lead.get("Industry"),
                    "Website": lead.get("Website"), "Phone": lead.get("Phone")}, user_id=user)
    contact_id = text_of(spec, "contactId") or store.create(
        "Contact", {"FirstName": lead.get("FirstName"), "LastName": lead.get("LastName"), "Email": lead.get("Email"),
                    "Phone": lead.get("Phone"), "Title": lead.get("Title"), "AccountId": account_id,
                    "LeadSource": lead.get("LeadSource")}, user_id=user)
    opportunity_id = None
    if (text_of(spec, "doNotCreateOpportunity") or "false").lower() != "true":
        close = (dt.date.today() + dt.timedelta(days=30)).isoformat()
        opportunity_id = store.create("Opportunity", {
            "Name": text_of(spec, "opportunityName") or f"{lead.get('Company') or lead.get('Name')}-",
            "StageName": _first_open_stage(call), "CloseDate": close, "AccountId": account_id,
            "LeadSource": lead.get("LeadSource")}, user_id=user)
    store.system_update("Lead", lead["Id"], {
        "IsConverted": True, "ConvertedAccountId": account_id, "ConvertedContactId": contact_id,
        "ConvertedOpportunityId": opportunity_id, "ConvertedDate": dt.date.today().isoformat(), "Status": status,
    }, user_id=user)
    return {"accountId": ids.normalize(account_id), "contactId": ids.normalize(contact_id), "leadId": lead["Id"],
            "opportunityId": opportunity_id}


def convert_lead(call: SoapCall) -> str:
    """``convertLead(leadConverts[])``: Account, Contact and (optionally) Opportunity from each lead."""
    out = []
    for spec in call.envelope.children("leadConverts")[:MAX_WRITE]:
        try:
            with call.store.transaction():
                r = _convert_one(call, spec)
        except (_Failed, SalesforceApiError) as exc:
            error = exc.error if isinstance(exc, _Failed) else exc
            out.append(f'<result><accountId xsi:nil="true"/><contactId xsi:nil="true"/>{error_xml(error)}'
                       f"{element('leadId', ids.normalize(text_of(spec, 'leadId')))}"
                       '<opportunityId xsi:nil="true"/><success>false</success></result>')
            continue
        out.append(f"<result>{element('accountId', r['accountId'])}{element('contactId', r['contactId'])}"
                   f"{element('leadId', r['leadId'])}{element('opportunityId', r['opportunityId'])}"
                   "<success>true</success></result>")
    return "".join(out)


# -- findDuplicates ---------------------------------------------------------------------------------


def _duplicates(call: SoapCall, sobject_name: str, values: dict[str, Any], own_id: str | None) -> str:
    rule = DUPLICATE_RULES.get(sobject_name)
    if rule is None:
        return "<result><success>true</success></result>"
    rule_name, field = rule
    value = next((v for k, v in values.items() if k.lower() == field.lower()), None)
    matches = []
    if value:
        soql = (f"SELECT Id, {field} FROM {sobject_name} WHERE {field} = {_soql_literal(str(value))}")
        obj = call.store.metadata.get(sobject_name)
        for record in call.store.query(soql, api_version=call.version)["records"]:
            if record["Id"] != own_id:
                matches.append(f"<matchRecords><matchConfidence>100.0</matchConfidence>"
                               f"{sobject('record', record, obj, call.store.metadata)}</matchRecords>")
    match = (f"<matchResults><entityType>{sobject_name}</entityType><matchEngine>ExactMatchEngine</matchEngine>"
             f"{''.join(matches)}<rule>{rule_name}</rule><size>{len(matches)}</size><success>true</success>"
             "</matchResults>")
    duplicate = (f"<duplicateResults><allowSave>true</allowSave><duplicateRule>{rule_name}</duplicateRule>"
                 f"<duplicateRuleEntityType>{sobject_name}</duplicateRuleEntityType>"
                 f"<errorMessage>You're creating a duplicate record.</errorMessage>{match}</duplicateResults>")
    return f"<result>{duplicate if matches else ''}<success>true</success></result>"


def find_duplicates(call: SoapCall) -> str:
    """``findDuplicates(sObjects[])``."""
    out = []
    for element_ in call.envelope.children("sObjects")[:50]:
        sobject_type, values, _ = parse_sobject(element_)
        obj = require_type(call, sobject_type)
        out.append(_duplicates(call, obj.name, values, ids.normalize(values.get("Id"))))
    return "".join(out)


def find_duplicates_by_ids(call: SoapCall) -> str:
    """``findDuplicatesByIds(ids[])``."""
    out = []
    for raw in call.envelope.texts("ids")[:50]:
        normalized = ids.normalize(raw)
        obj = call.store.metadata.by_prefix(normalized[:3]) if normalized else None
        if obj is None:
            raise SalesforceApiError("INVALID_ID_FIELD", f"invalid record id: {raw}")
        try:
            record = call.store.retrieve(obj.name, normalized, api_version=call.version)
        except SalesforceApiError:
            out.append(f"<result>{error_xml(SalesforceApiError('INVALID_ID_FIELD', 'invalid record id'))}"
                       f"<success>{spell(False)}</success></result>")
            continue
        out.append(_duplicates(call, obj.name, record, normalized))
    return "".join(out)


OPERATIONS = {"merge": merge, "convertLead": convert_lead, "findDuplicates": find_duplicates,
              "findDuplicatesByIds": find_duplicates_by_ids}
