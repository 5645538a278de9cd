"""A new org's setup objects over the wire: the picklist-value objects (LeadStatus, OpportunityStage,
CaseStatus ...), business hours, roles and record types, queried through REST, Bulk 1.0, Bulk 2.0
and SOAP by simple-salesforce and our SOAP hook, read-only where Salesforce makes them so, and the
rules they impose on records (stage -> probability, status -> IsClosed, convertLead's converted
status, RecordTypeId)."""

from __future__ import annotations

import csv
import io

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

V = "62.0"
LEAD_STATUSES = [("Open - Not Contacted", True, False), ("Working - Contacted", False, False),
                 ("Closed - Converted", False, True), ("Closed - Not Converted", False, False)]
STAGES = [("Prospecting", 10, "Pipeline", False, False), ("Qualification", 10, "Pipeline", False, False),
          ("Needs Analysis", 20, "Pipeline", False, False), ("Value Proposition", 50, "Pipeline", False, False),
          ("Id. Decision Makers", 60, "Pipeline", False, False), ("Perception Analysis", 70, "Pipeline", False, False),
          ("Proposal/Price Quote", 75, "Pipeline", False, False), ("Negotiation/Review", 90, "Pipeline", False, False),
          ("Closed Won", 100, "Closed", True, True), ("Closed Lost", 0, "Omitted", True, False)]


@pytest.fixture
def soap(sf_conn) -> SalesforceSoapHook:
    return SalesforceSoapHook(sf_conn())


def _rows(sf: Salesforce, soql: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "attributes"} for r in sf.query_all(soql)["records"]]


def _picklist(sf: Salesforce, sobject: str, field: str) -> list[tuple[str, str, bool]]:
    described = getattr(sf, sobject).describe()
    fdef = next(f for f in described["fields"] if f["name"] == field)
    return [(p["value"], p["label"], p["defaultValue"]) for p in fdef["picklistValues"]]


def _error(call) -> dict:
    with pytest.raises(SalesforceMalformedRequest) as info:
        call()
    return info.value.content[0]


# ----------------------------------------------------------------- queries through every API

def test_rest_query_lead_status_and_stage_defaults(sf: Salesforce) -> None:
    rows = _rows(sf, "SELECT ApiName, MasterLabel, SortOrder, IsDefault, IsConverted FROM LeadStatus ORDER BY SortOrder")
    assert [(r["MasterLabel"], r["IsDefault"], r["IsConverted"]) for r in rows] == LEAD_STATUSES
    assert [r["SortOrder"] for r in rows] == [1, 2, 3, 4] and all(r["ApiName"] == r["MasterLabel"] for r in rows)
    stages = _rows(sf, "SELECT MasterLabel, DefaultProbability, ForecastCategoryName, ForecastCategory, IsClosed, "
                       "IsWon, IsActive FROM OpportunityStage ORDER BY SortOrder")
    assert [(s["MasterLabel"], s["DefaultProbability"], s["ForecastCategoryName"], s["IsClosed"], s["IsWon"])
            for s in stages] == STAGES
    assert {s["ForecastCategory"] for s in stages} == {"Pipeline", "Closed", "Omitted"}
    assert all(s["IsActive"] for s in stages)
    closed = _rows(sf, "SELECT MasterLabel FROM CaseStatus WHERE IsClosed = true")
    assert closed == [{"MasterLabel": "Closed"}]


def test_bulk_v1_and_v2_query_setup_objects(sf: Salesforce) -> None:
    rows = sf.bulk.OpportunityStage.query("SELECT MasterLabel, IsWon FROM OpportunityStage WHERE IsWon = true",
                                          lazy_operation=False, wait=0.05)
    assert [(r["MasterLabel"], r["IsWon"]) for r in rows] == [("Closed Won", True)]
    pages = list(sf.bulk2.TaskStatus.query("SELECT MasterLabel, IsClosed, IsDefault FROM TaskStatus ORDER BY SortOrder",
                                           wait=0.05))
    table = list(csv.DictReader(io.StringIO("".join(pages))))
    assert [(r["MasterLabel"], r["IsClosed"], r["IsDefault"]) for r in table] == [
        ("Not Started", "false", "true"), ("In Progress", "false", "false"), ("Completed", "true", "false"),
        ("Waiting on someone else", "false", "false"), ("Deferred", "false", "false")]


def test_soap_query_setup_objects(soap: SalesforceSoapHook) -> None:
    priorities = list(soap.query("SELECT MasterLabel, IsHighPriority, IsDefault FROM TaskPriority ORDER BY SortOrder"))
    assert [(p["MasterLabel"], p["IsHighPriority"], p["IsDefault"]) for p in priorities] == [
        ("High", True, False), ("Normal", False, True), ("Low", False, False)]
    [hours] = list(soap.query("SELECT Name, IsDefault, IsActive, TimeZoneSidKey, MondayStartTime, MondayEndTime "
                              "FROM BusinessHours WHERE IsDefault = true"))
    assert (hours["Name"], hours["IsActive"], hours["TimeZoneSidKey"]) == ("Default", True, "America/Los_Angeles")
    assert str(hours["MondayStartTime"]).startswith("00:00:00") and str(hours["MondayEndTime"]).startswith("00:00:00")
    contract = list(soap.query("SELECT MasterLabel, StatusCode FROM ContractStatus ORDER BY SortOrder"))
    assert [(c["MasterLabel"], c["StatusCode"]) for c in contract] == [
        ("Draft", "Draft"), ("In Approval Process", "InApproval"), ("Activated", "Activated")]
    roles = list(soap.query("SELECT Name, ParentRole.Name FROM UserRole WHERE ParentRole.Name = 'CEO' ORDER BY Name"))
    assert [r["Name"] for r in roles] == ["CFO", "COO", "SVP, Customer Service & Support", "SVP, Human Resources",
                                          "SVP, Sales & Marketing"]
    [group] = list(soap.query("SELECT DeveloperName, Type FROM Group WHERE Type = 'Organization'"))
    assert group["DeveloperName"] == "AllInternalUsers"
    assert len(list(soap.query("SELECT Id FROM PartnerRole"))) == 13


def test_searches_leave_setup_rows_out(sf: Salesforce) -> None:
    sf.Account.create({"Name": "CEO Partners"})
    found = sf.search("FIND {CEO}")["searchRecords"]
    assert [(r["attributes"]["type"]) for r in found] == ["Account"]  # not the CEO role
    assert sf.search("FIND {CEO} RETURNING UserRole(Name)")["searchRecords"][0]["Name"] == "CEO"


# ----------------------------------------------------------------- read-only and describe

def test_value_set_objects_are_read_only(sf: Salesforce, soap: SalesforceSoapHook) -> None:
    described = sf.LeadStatus.describe()
    assert (described["createable"], described["updateable"], described["deletable"]) == (False, False, False)
    assert described["queryable"] is True and described["label"] == "Lead Status Value"
    error = _error(lambda: sf.LeadStatus.create({"MasterLabel": "Nurturing"}))
    assert error["errorCode"] == "INVALID_TYPE_FOR_OPERATION" and "Lead Status Value" in error["message"]
    some = _rows(sf, "SELECT Id FROM CaseStatus LIMIT 1")[0]["Id"]
    assert _error(lambda: sf.CaseStatus.update(some, {"SortOrder": 9}))["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    [result] = soap.create([{"type": "OpportunityStage", "MasterLabel": "Dreaming"}])
    assert result["success"] is False and "INVALID_TYPE_FOR_OPERATION" in str(result["errors"])
    assert len(_rows(sf, "SELECT Id FROM OpportunityStage")) == len(STAGES)


def test_picklist_describe_follows_setup_rows(sf: Salesforce) -> None:
    assert _picklist(sf, "Lead", "Status") == [(s, s, d) for s, d, _ in LEAD_STATUSES]
    assert _picklist(sf, "Opportunity", "StageName") == [(s[0], s[0], False) for s in STAGES]
    assert [(v, d) for v, _, d in _picklist(sf, "Case", "Status")] == [
        ("New", True), ("Working", False), ("Escalated", False), ("Closed", False)]
    assert [(v, d) for v, _, d in _picklist(sf, "Task", "Priority")] == [("High", False), ("Normal", True), ("Low", False)]


# ----------------------------------------------------------------- rules on records

def test_stage_fills_probability_forecast_and_closed_flags(sf: Salesforce) -> None:
    fields = "StageName, Probability, ForecastCategoryName, IsClosed, IsWon"
    won = sf.Opportunity.create({"Name": "Won", "StageName": "Closed Won", "CloseDate": "2026-12-31"})["id"]
    assert _rows(sf, f"SELECT {fields} FROM Opportunity WHERE Id = '{won}'") == [
        {"StageName": "Closed Won", "Probability": 100.0, "ForecastCategoryName": "Closed", "IsClosed": True,
         "IsWon": True}]
    given = sf.Opportunity.create({"Name": "Own odds", "StageName": "Qualification", "CloseDate": "2026-12-31",
                                   "Probability": 35, "ForecastCategoryName": "Best Case"})["id"]
    sf.Opportunity.update(given, {"Description": "stage untouched"})
    assert _rows(sf, f"SELECT Probability, ForecastCategoryName FROM Opportunity WHERE Id = '{given}'") == [
        {"Probability": 35.0, "ForecastCategoryName": "Best Case"}]
    sf.Opportunity.update(given, {"StageName": "Closed Lost"})  # a new stage brings its own defaults
    assert _rows(sf, f"SELECT {fields} FROM Opportunity WHERE Id = '{given}'") == [
        {"StageName": "Closed Lost", "Probability": 0.0, "ForecastCategoryName": "Omitted", "IsClosed": True,
         "IsWon": False}]
    sf.Opportunity.update(given, {"StageName": "Negotiation/Review", "Probability": 80})
    assert _rows(sf, f"SELECT {fields} FROM Opportunity WHERE Id = '{given}'") == [
        {"StageName": "Negotiation/Review", "Probability": 80.0, "ForecastCategoryName": "Pipeline",
         "IsClosed": False, "IsWon": False}]
    error = _error(lambda: sf.Opportunity.create({"Name": "x", "StageName": "Dreaming", "CloseDate": "2026-12-31"}))
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" and error["fields"] == ["StageName"]


def test_case_task_contract_and_lead_statuses(sf: Salesforce) -> None:
    case = sf.Case.create({"Subject": "Broken"})["id"]
    assert _rows(sf, f"SELECT Status, IsClosed, ClosedDate FROM Case WHERE Id = '{case}'") == [
        {"Status": "New", "IsClosed": False, "ClosedDate": None}]
    sf.Case.update(case, {"Status": "Closed"})
    [closed] = _rows(sf, f"SELECT IsClosed, ClosedDate FROM Case WHERE Id = '{case}'")
    assert closed["IsClosed"] is True and closed["ClosedDate"]
    sf.Case.update(case, {"Status": "Working"})
    assert _rows(sf, f"SELECT IsClosed, ClosedDate FROM Case WHERE Id = '{case}'") == [
        {"IsClosed": False, "ClosedDate": None}]
    task = sf.Task.create({"Subject": "Call", "Status": "Completed", "Priority": "High"})["id"]
    assert _rows(sf, f"SELECT Status, IsClosed, IsHighPriority FROM Task WHERE Id = '{task}'") == [
        {"Status": "Completed", "IsClosed": True, "IsHighPriority": True}]
    default_task = sf.Task.create({"Subject": "Later"})["id"]
    assert _rows(sf, f"SELECT Status, Priority, IsClosed, IsHighPriority FROM Task WHERE Id = '{default_task}'") == [
        {"Status": "Not Started", "Priority": "Normal", "IsClosed": False, "IsHighPriority": False}]
    account = sf.Account.create({"Name": "Contracted"})["id"]
    contract = sf.Contract.create({"AccountId": account})["id"]
    sf.Contract.update(contract, {"Status": "In Approval Process"})
    assert _rows(sf, f"SELECT Status, StatusCode FROM Contract WHERE Id = '{contract}'") == [
        {"Status": "In Approval Process", "StatusCode": "InApproval"}]
    lead = sf.Lead.create({"LastName": "Default", "Company": "Co"})["id"]
    [default] = _rows(sf, "SELECT MasterLabel FROM LeadStatus WHERE IsDefault = true")
    assert _rows(sf, f"SELECT Status FROM Lead WHERE Id = '{lead}'") == [{"Status": default["MasterLabel"]}]


def test_documented_convert_lead_recipe(soap: SalesforceSoapHook) -> None:
    # The documented way: query LeadStatus for a converted value, then convertLead with it.
    [status] = list(soap.query("SELECT Id, MasterLabel FROM LeadStatus WHERE IsConverted = true LIMIT 1"))
    [lead] = soap.create([{"type": "Lead", "LastName": "Recipe", "Company": "Recipe Co"}])
    [converted] = soap.convert_lead([{"leadId": lead["id"], "convertedStatus": status["MasterLabel"]}])
    assert converted["success"], converted
    [row] = soap.retrieve("Lead", [lead["id"]], ["Status", "IsConverted", "ConvertedOpportunityId"])
    assert row["Status"] == "Closed - Converted" and row["IsConverted"] is True
    [opportunity] = soap.retrieve("Opportunity", [converted["opportunityId"]], ["StageName", "Probability", "IsClosed"])
    assert (opportunity["StageName"], opportunity["Probability"], opportunity["IsClosed"]) == ("Prospecting", 10.0, False)


@pytest.mark.parametrize("status", ["Working - Contacted", "Qualified"])
def test_convert_lead_rejects_a_status_that_is_not_converted(soap: SalesforceSoapHook, status: str) -> None:
    [lead] = soap.create([{"type": "Lead", "LastName": "Wrong", "Company": "Wrong Co"}])
    [result] = soap.convert_lead([{"leadId": lead["id"], "convertedStatus": status, "doNotCreateOpportunity": True}])
    assert result["success"] is False
    [error] = result["errors"]
    assert (error["statusCode"], error["message"], list(error["fields"])) == (
        "INVALID_STATUS", f"invalid convertedStatus: {status}", ["Status"])
    assert list(soap.query("SELECT Id FROM Account WHERE Name = 'Wrong Co'")) == []  # nothing half-converted
    [row] = soap.retrieve("Lead", [lead["id"]], ["IsConverted"])
    assert row["IsConverted"] is False


# ----------------------------------------------------------------- record types

def _record_type_infos(sf: Salesforce, sobject: str) -> list[tuple[str, bool, bool, bool]]:
    infos = getattr(sf, sobject).describe()["recordTypeInfos"]
    return [(i["developerName"], i["master"], i["available"], i["defaultRecordTypeMapping"]) for i in infos]


def test_record_types_none_by_default_then_created_and_validated(sf: Salesforce) -> None:
    assert _rows(sf, "SELECT Id FROM RecordType") == []
    assert _record_type_infos(sf, "Account") == [("Master", True, True, True)]
    partner = sf.RecordType.create({"Name": "Partner", "DeveloperName": "Partner", "SobjectType": "Account",
                                    "IsActive": True})["id"]
    sf.RecordType.create({"Name": "Old", "DeveloperName": "Old", "SobjectType": "Account", "IsActive": False})
    deal = sf.RecordType.create({"Name": "Deal", "DeveloperName": "Deal", "SobjectType": "Opportunity",
                                 "IsActive": True})["id"]
    assert _record_type_infos(sf, "Account") == [
        ("Old", False, False, False), ("Partner", False, True, True), ("Master", True, False, False)]
    assert [i["recordTypeId"] for i in sf.Account.describe()["recordTypeInfos"]][1] == partner
    # A create without RecordTypeId gets the default; a wrong one is refused as Salesforce refuses it.
    plain = sf.Account.create({"Name": "Defaulted"})["id"]
    assert _rows(sf, f"SELECT RecordTypeId, RecordType.DeveloperName FROM Account WHERE Id = '{plain}'")[0][
        "RecordTypeId"] == partner
    for wrong in (deal, "012000000000099AAA"):
        error = _error(lambda: sf.Account.create({"Name": "Wrong type", "RecordTypeId": wrong}))
        assert (error["errorCode"], error["fields"]) == ("INVALID_CROSS_REFERENCE_KEY", ["RecordTypeId"])
        assert error["message"] == f"Record Type ID: this ID value isn't valid for the user: {wrong}"
    inactive = _rows(sf, "SELECT Id FROM RecordType WHERE DeveloperName = 'Old'")[0]["Id"]
    assert _error(lambda: sf.Account.update(plain, {"RecordTypeId": inactive}))["errorCode"] == \
        "INVALID_CROSS_REFERENCE_KEY"
    error = _error(lambda: sf.RecordType.create({"Name": "X", "DeveloperName": "X", "SobjectType": "Pricebook2"}))
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert _error(lambda: sf.RecordType.delete(partner))["errorCode"] == "INVALID_TYPE_FOR_OPERATION"


def test_reset_restores_the_new_org(sf: Salesforce, salesforce_emulator_reset) -> None:
    sf.RecordType.create({"Name": "Gone", "DeveloperName": "Gone", "SobjectType": "Case", "IsActive": True})
    assert [i[0] for i in _record_type_infos(sf, "Case")] == ["Gone", "Master"]
    salesforce_emulator_reset.reset()
    assert _record_type_infos(sf, "Case") == [("Master", True, True, True)]
    assert len(_rows(sf, "SELECT Id FROM LeadStatus")) == len(LEAD_STATUSES)


def test_a_database_file_from_before_the_setup_rows_gets_them(tmp_path) -> None:
    from airflow_provider_salesforce_suite.emulator.store import Store

    path = str(tmp_path / "org.db")
    store = Store(path)
    account = store.create("Account", {"Name": "Kept"})
    for sobject in ("LeadStatus", "OpportunityStage", "CaseStatus"):  # as a file written before they existed
        store._conn.execute(f'DELETE FROM "{sobject}"')
    store.close()
    reopened = Store(path)
    try:
        assert reopened.query("SELECT COUNT() FROM OpportunityStage", api_version=V)["totalSize"] == len(STAGES)
        assert reopened.query("SELECT COUNT() FROM Account", api_version=V)["totalSize"] == 1
        assert reopened.query("SELECT COUNT() FROM User", api_version=V)["totalSize"] == 1  # not seeded twice
        opportunity = reopened.create("Opportunity", {"Name": "o", "StageName": "Closed Won", "CloseDate": "2026-12-31",
                                                      "AccountId": account})
        row = reopened.retrieve("Opportunity", opportunity, ["Probability", "IsWon"], api_version=V)
        assert (row["Probability"], row["IsWon"]) == (100.0, True)
    finally:
        reopened.close()


def test_rows_loaded_behind_the_api_drive_the_rules() -> None:
    # What a loader of a real org's setup rows does: write them, then tell the store.
    from airflow_provider_salesforce_suite.emulator.errors import SalesforceApiError
    from airflow_provider_salesforce_suite.emulator.store import Store

    store = Store()
    try:
        store._conn.execute('UPDATE "OpportunityStage" SET "IsActive" = 0 WHERE "ApiName" = \'Perception Analysis\'')
        store._conn.execute('UPDATE "OpportunityStage" SET "DefaultProbability" = 40 WHERE "ApiName" = \'Qualification\'')
        store.setup_rows_changed()
        stage = store.metadata.get("Opportunity").field("StageName")
        assert [(p.value, p.active) for p in stage.picklist][4:6] == [("Id. Decision Makers", True),
                                                                    ("Perception Analysis", False)]
        base = {"Name": "o", "CloseDate": "2026-12-31"}
        with pytest.raises(SalesforceApiError, match="bad value for restricted picklist field: Perception Analysis"):
            store.create("Opportunity", {**base, "StageName": "Perception Analysis"})
        made = store.create("Opportunity", {**base, "StageName": "Qualification"})
        assert store.retrieve("Opportunity", made, ["Probability"], api_version=V)["Probability"] == 40.0
    finally:
        store.close()


def test_record_type_created_earlier_in_the_same_composite_request(salesforce_emulator_reset) -> None:
    from sf_emulator_client import V as REST, EmulatorClient

    client = EmulatorClient(salesforce_emulator_reset)

    def composite(all_or_none: bool, account: dict) -> list[dict]:
        subs = [{"referenceId": "rt", "method": "POST", "url": REST + "/sobjects/RecordType",
                 "body": {"Name": "Direct", "DeveloperName": "Direct", "SobjectType": "Account", "IsActive": True}},
                {"referenceId": "acc", "method": "POST", "url": REST + "/sobjects/Account", "body": account}]
        reply = client.post(REST + "/composite", json={"allOrNone": all_or_none, "compositeRequest": subs})
        return reply.json()["compositeResponse"]

    rolled_back = composite(True, {"Name": "Bad", "NumberOfEmployees": "many"})  # the account fails: nothing stays
    assert [item["httpStatusCode"] for item in rolled_back] == [400, 400]
    assert client.get(REST + "/query", params={"q": "SELECT COUNT() FROM RecordType"}).json()["totalSize"] == 0
    infos = client.get(REST + "/sobjects/Account/describe").json()["recordTypeInfos"]
    assert [i["developerName"] for i in infos] == ["Master"]
    items = composite(True, {"Name": "Typed", "RecordTypeId": "@{rt.id}"})
    assert [item["httpStatusCode"] for item in items] == [201, 201], items
    infos = client.get(REST + "/sobjects/Account/describe").json()["recordTypeInfos"]
    assert [i["developerName"] for i in infos] == ["Direct", "Master"]
