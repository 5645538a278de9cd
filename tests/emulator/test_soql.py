"""Unit tests of the SOQL engine (grammar, compiler, shaping) through Store.query."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_provider_salesforce_suite.emulator.errors import SalesforceApiError
from airflow_provider_salesforce_suite.emulator.soql.dates import date_range
from airflow_provider_salesforce_suite.emulator.store import Store

V = "64.0"
TODAY = dt.datetime.now(dt.timezone.utc).date()


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    schema = tmp_path_factory.mktemp("s") / "schema.json"
    schema.write_text(json.dumps({
        "objects": {"Project__c": {"fields": {
            "Account__c": {"type": "lookup", "referenceTo": "Account", "childRelationshipName": "Projects"},
            "Tags__c": {"type": "multipicklist", "values": ["red", "green", "blue"]},
            "Budget__c": {"type": "number", "precision": 10, "scale": 2},
        }}},
    }))
    store = Store(schema_files=[schema])
    acme = store.create("Account", {"Name": "Acme", "Industry": "Banking", "AnnualRevenue": 100, "Rating": "Hot"})
    globex = store.create("Account", {"Name": "Globex", "Industry": "Banking", "AnnualRevenue": 300,
                                      "ParentId": acme})
    initech = store.create("Account", {"Name": "Initech", "Industry": "Technology", "NumberOfEmployees": 5,
                                       "Description": "It's a \\ \"test\"\nline"})
    store.create("Account", {"Name": "O'Reilly_50%"})
    for i, (last, acc) in enumerate([("Smith", acme), ("Jones", acme), ("Brown", globex), ("Orphan", None)]):
        store.create("Contact", {"LastName": last, "FirstName": f"F{i}", "AccountId": acc,
                                 "Birthdate": (TODAY - dt.timedelta(days=i * 40)).isoformat()})
    store.create("Project__c", {"Name": "P1", "Account__c": acme, "Tags__c": "red;green", "Budget__c": 10})
    store.create("Project__c", {"Name": "P2", "Account__c": globex, "Tags__c": "blue", "Budget__c": 20.5})
    store.create("Project__c", {"Name": "P3"})
    store.create("Opportunity", {"Name": "O1", "StageName": "Prospecting", "CloseDate": TODAY.isoformat(),
                                 "AccountId": acme, "Amount": 50})
    store.create("Opportunity", {"Name": "O2", "StageName": "Closed Won",
                                 "CloseDate": (TODAY + dt.timedelta(days=400)).isoformat(), "AccountId": acme})
    store.create("Event", {"Subject": "Call", "DurationInMinutes": 30, "WhatId": globex,
                           "StartDateTime": f"{TODAY.isoformat()}T10:00:00Z"})
    deleted = store.create("Account", {"Name": "Gone"})
    store.delete("Account", deleted)
    store.ids = {"acme": acme, "globex": globex, "initech": initech, "deleted": deleted}
    yield store
    store.close()


def q(store, soql, **kw):
    return store.query(soql, api_version=V, **kw)


def names(store, soql, key="Name", **kw):
    return [r[key] for r in q(store, soql, **kw)["records"]]


def err(store, soql) -> SalesforceApiError:
    with pytest.raises(SalesforceApiError) as exc:
        q(store, soql)
    assert exc.value.status == 400
    return exc.value


# ----------------------------------------------------------------- basics and shape

def test_select_shape_and_case_insensitivity(org):
    res = q(org, "select id, NAME, industry from ACCOUNT where name = 'acme'")
    assert res["totalSize"] == 1 and res["done"] is True and "nextRecordsUrl" not in res
    rec = res["records"][0]
    assert list(rec) == ["attributes", "Id", "Name", "Industry"]
    assert rec["attributes"] == {"type": "Account", "url": f"/services/data/v64.0/sobjects/Account/{rec['Id']}"}


def test_deleted_rows_only_with_query_all(org):
    assert "Gone" not in names(org, "SELECT Name FROM Account")
    assert "Gone" in names(org, "SELECT Name FROM Account", include_deleted=True)
    assert names(org, "SELECT Name FROM Account WHERE IsDeleted = true", include_deleted=True) == ["Gone"]


def test_parent_relationships_any_depth_and_null(org):
    recs = q(org, "SELECT LastName, Account.Name, Account.Parent.Name, Account.Owner.Username FROM Contact "
                  "ORDER BY LastName")["records"]
    by = {r["LastName"]: r for r in recs}
    assert by["Brown"]["Account"]["Name"] == "Globex"
    assert by["Brown"]["Account"]["Parent"]["Name"] == "Acme"
    assert by["Brown"]["Account"]["Parent"]["attributes"]["type"] == "Account"
    assert by["Smith"]["Account"]["Parent"] is None
    assert by["Smith"]["Account"]["Owner"]["Username"] == "admin@emulator.local"
    assert by["Orphan"]["Account"] is None


def test_custom_relationship_and_polymorphic(org):
    recs = q(org, "SELECT Name, Account__r.Name FROM Project__c ORDER BY Name")["records"]
    assert [r["Account__r"] and r["Account__r"]["Name"] for r in recs] == ["Acme", "Globex", None]
    ev = q(org, "SELECT Subject, What.Name, What.Type, Owner.Name FROM Event")["records"][0]
    assert ev["What"]["Name"] == "Globex" and ev["What"]["attributes"]["type"] == "Account"
    assert ev["What"]["Type"] == "Account" and ev["Owner"]["attributes"]["type"] == "User"


def test_child_subqueries(org):
    recs = q(org, "SELECT Name, (SELECT LastName FROM Contacts WHERE LastName != 'Jones' ORDER BY LastName), "
                  "(SELECT Name FROM Projects__r) FROM Account WHERE Industry = 'Banking' ORDER BY Name")["records"]
    acme, globex = recs
    assert acme["Contacts"]["totalSize"] == 1 and acme["Contacts"]["done"] is True
    assert acme["Contacts"]["records"][0]["LastName"] == "Smith"
    assert acme["Contacts"]["records"][0]["attributes"]["type"] == "Contact"
    assert acme["Projects__r"]["records"][0]["Name"] == "P1"
    limited = q(org, "SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName DESC LIMIT 1) FROM Account "
                     "WHERE Name = 'Acme'")["records"][0]
    assert [c["LastName"] for c in limited["Contacts"]["records"]] == ["Smith"]
    empty = q(org, "SELECT Name, (SELECT Id FROM Contacts) FROM Account WHERE Name = 'Initech'")["records"][0]
    assert empty["Contacts"] is None


# ----------------------------------------------------------------- operators and literals

@pytest.mark.parametrize("where, expected", [
    ("AnnualRevenue = 100", ["Acme"]),
    ("AnnualRevenue != 100", ["Globex", "Initech", "O'Reilly_50%"]),  # != keeps nulls, as SOQL does
    ("AnnualRevenue <> 100", ["Globex", "Initech", "O'Reilly_50%"]),
    ("AnnualRevenue < 300", ["Acme"]),
    ("AnnualRevenue <= 300", ["Acme", "Globex"]),
    ("AnnualRevenue > 100", ["Globex"]),
    ("AnnualRevenue >= 100.0", ["Acme", "Globex"]),
    ("AnnualRevenue = null", ["Initech", "O'Reilly_50%"]),
    ("AnnualRevenue != null", ["Acme", "Globex"]),
    ("Name LIKE 'g%'", ["Globex"]),
    ("Name LIKE '_nitech'", ["Initech"]),
    ("Name LIKE '%\\_50\\%'", ["O'Reilly_50%"]),
    ("Name = 'O\\'Reilly_50%'", ["O'Reilly_50%"]),
    ("Name IN ('acme', 'Initech')", ["Acme", "Initech"]),
    ("Name NOT IN ('acme', 'Initech')", ["Globex", "O'Reilly_50%"]),
    ("Industry NOT IN ('Banking')", ["Initech", "O'Reilly_50%"]),
    ("Industry IN ('Technology', null)", ["Initech", "O'Reilly_50%"]),
    ("Industry = 'Banking' AND AnnualRevenue > 200", ["Globex"]),
    ("Industry = 'Technology' OR AnnualRevenue < 200", ["Acme", "Initech"]),
    ("NOT Industry = 'Banking'", ["Initech"]),
    ("(Industry = 'Banking' OR Industry = 'Technology') AND NOT (Name = 'Acme')", ["Globex", "Initech"]),
    ("Id IN (SELECT AccountId FROM Contact)", ["Acme", "Globex"]),
    ("Id NOT IN (SELECT AccountId FROM Contact WHERE LastName = 'Brown')", ["Acme", "Initech", "O'Reilly_50%"]),
    ("Id IN (SELECT Account__c FROM Project__c WHERE Budget__c > 15)", ["Globex"]),
    ("Parent.Name = 'Acme'", ["Globex"]),
    ("ParentId != null", ["Globex"]),
    ("Rating = 'Hot' AND Description = null", ["Acme"]),
])
def test_where_operators(org, where, expected):
    assert names(org, f"SELECT Name FROM Account WHERE {where} ORDER BY Name") == expected


def test_string_escapes(org):
    assert names(org, "SELECT Name FROM Account WHERE Description = 'It\\'s a \\\\ \"test\"\\nline'") == ["Initech"]
    e = err(org, "SELECT Name FROM Account WHERE Name = 'bad \\q escape'")
    assert e.error_code == "MALFORMED_QUERY"


def test_booleans_numbers_ids(org):
    assert len(names(org, "SELECT Name FROM Account WHERE IsDeleted = false")) == 4
    assert names(org, "SELECT Name FROM Account WHERE NumberOfEmployees = 5") == ["Initech"]
    short = org.ids["acme"][:15]
    assert names(org, f"SELECT Name FROM Account WHERE Id = '{short}'") == ["Acme"]
    assert names(org, f"SELECT LastName FROM Contact WHERE AccountId IN ('{short}') ORDER BY LastName",
                 key="LastName") == ["Jones", "Smith"]
    e = err(org, "SELECT Name FROM Account WHERE Id = 'nonsense'")
    assert e.error_code == "INVALID_QUERY_FILTER_OPERATOR" and "invalid ID field: nonsense" in e.message


def test_includes_excludes(org):
    assert names(org, "SELECT Name FROM Project__c WHERE Tags__c INCLUDES ('red')") == ["P1"]
    assert names(org, "SELECT Name FROM Project__c WHERE Tags__c INCLUDES ('green;red', 'blue') ORDER BY Name") == ["P1", "P2"]
    assert names(org, "SELECT Name FROM Project__c WHERE Tags__c INCLUDES ('red;blue')") == []
    assert names(org, "SELECT Name FROM Project__c WHERE Tags__c EXCLUDES ('red') ORDER BY Name") == ["P2", "P3"]
    assert err(org, "SELECT Name FROM Account WHERE Name INCLUDES ('x')").error_code == "INVALID_FIELD"


def test_date_and_datetime_literals(org):
    assert names(org, f"SELECT Name FROM Opportunity WHERE CloseDate = {TODAY.isoformat()}") == ["O1"]
    assert names(org, "SELECT Name FROM Opportunity WHERE CloseDate = TODAY") == ["O1"]
    assert names(org, "SELECT Name FROM Opportunity WHERE CloseDate > TODAY") == ["O2"]
    assert names(org, "SELECT Name FROM Opportunity WHERE CloseDate = NEXT_N_DAYS:500") == ["O2"]
    assert names(org, "SELECT Name FROM Opportunity WHERE CloseDate = THIS_YEAR OR CloseDate = NEXT_YEAR "
                      "ORDER BY Name") == ["O1", "O2"][: 1 + int((TODAY + dt.timedelta(days=400)).year == TODAY.year + 1)]
    assert len(names(org, "SELECT Name FROM Account WHERE CreatedDate = TODAY")) == 4
    assert names(org, "SELECT Name FROM Account WHERE CreatedDate < YESTERDAY") == []
    assert len(names(org, "SELECT Name FROM Account WHERE CreatedDate = LAST_N_DAYS:3")) == 4
    assert len(names(org, "SELECT Name FROM Account WHERE CreatedDate > 2000-01-01T00:00:00Z")) == 4
    assert len(names(org, "SELECT Name FROM Account WHERE CreatedDate > 2000-01-01T00:00:00.000+01:00")) == 4
    assert names(org, "SELECT Name FROM Account WHERE CreatedDate < 2000-01-01T00:00:00-05:00") == []
    start = f"{TODAY.isoformat()}T09:59:59Z"
    assert names(org, f"SELECT Subject FROM Event WHERE StartDateTime > {start}", key="Subject") == ["Call"]
    assert names(org, "SELECT LastName FROM Contact WHERE Birthdate = LAST_90_DAYS ORDER BY LastName",
                 key="LastName") == ["Brown", "Jones", "Smith"]
    assert err(org, "SELECT Name FROM Account WHERE CreatedDate > 2020-01-01").error_code == "INVALID_FIELD"
    assert err(org, "SELECT Name FROM Opportunity WHERE CloseDate = 2020-01-01T00:00:00Z").error_code == "INVALID_FIELD"
    assert err(org, "SELECT Name FROM Opportunity WHERE CloseDate = SOMEDAY").error_code == "MALFORMED_QUERY"
    assert err(org, "SELECT Name FROM Opportunity WHERE CloseDate = LAST_N_DAYS").error_code == "MALFORMED_QUERY"


@pytest.mark.parametrize("name, n, start, end", [
    ("TODAY", None, "2026-11-28", "2026-11-29"),
    ("YESTERDAY", None, "2026-11-27", "2026-11-28"),
    ("TOMORROW", None, "2026-11-29", "2026-11-30"),
    ("THIS_WEEK", None, "2026-11-22", "2026-11-29"),  # 2026-11-28 is a Saturday; weeks start Sunday
    ("LAST_WEEK", None, "2026-11-15", "2026-11-22"),
    ("NEXT_WEEK", None, "2026-11-29", "2026-12-06"),
    ("THIS_MONTH", None, "2026-11-01", "2026-12-01"),
    ("LAST_MONTH", None, "2026-10-01", "2026-11-01"),
    ("NEXT_MONTH", None, "2026-12-01", "2027-01-01"),
    ("LAST_90_DAYS", None, "2026-08-30", "2026-11-29"),
    ("NEXT_90_DAYS", None, "2026-11-29", "2027-02-27"),
    ("THIS_QUARTER", None, "2026-10-01", "2027-01-01"),
    ("LAST_QUARTER", None, "2026-07-01", "2026-10-01"),
    ("NEXT_QUARTER", None, "2027-01-01", "2027-04-01"),
    ("THIS_YEAR", None, "2026-01-01", "2027-01-01"),
    ("LAST_YEAR", None, "2025-01-01", "2026-01-01"),
    ("NEXT_YEAR", None, "2027-01-01", "2028-01-01"),
    ("LAST_N_DAYS", 7, "2026-11-21", "2026-11-29"),
    ("NEXT_N_DAYS", 3, "2026-11-29", "2026-12-02"),
    ("LAST_N_WEEKS", 2, "2026-11-08", "2026-11-22"),
    ("NEXT_N_WEEKS", 1, "2026-11-29", "2026-12-06"),
    ("LAST_N_MONTHS", 2, "2026-09-01", "2026-11-01"),
    ("NEXT_N_MONTHS", 2, "2026-12-01", "2027-02-01"),
    ("LAST_N_YEARS", 2, "2024-01-01", "2026-01-01"),
    ("NEXT_N_YEARS", 1, "2027-01-01", "2028-01-01"),
])
def test_date_literal_ranges(name, n, start, end):
    got = date_range(name, n, dt.date(2026, 11, 28))
    assert (got[0].isoformat(), got[1].isoformat()) == (start, end)


# ----------------------------------------------------------------- ordering, limits

def test_order_by_nulls_limit_offset(org):
    asc = names(org, "SELECT Name FROM Account ORDER BY AnnualRevenue, Name")
    assert asc == ["Initech", "O'Reilly_50%", "Acme", "Globex"]  # ASC: nulls first
    desc = names(org, "SELECT Name FROM Account ORDER BY AnnualRevenue DESC, Name")
    assert desc == ["Globex", "Acme", "Initech", "O'Reilly_50%"]  # DESC: nulls last
    assert names(org, "SELECT Name FROM Account ORDER BY AnnualRevenue ASC NULLS LAST, Name DESC") == \
        ["Acme", "Globex", "O'Reilly_50%", "Initech"]
    assert names(org, "SELECT Name FROM Account ORDER BY AnnualRevenue DESC NULLS FIRST, Name LIMIT 2") == \
        ["Initech", "O'Reilly_50%"]
    assert names(org, "SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1") == ["Globex", "Initech"]
    assert names(org, "SELECT LastName FROM Contact ORDER BY Account.Name DESC NULLS LAST, LastName",
                 key="LastName") == ["Brown", "Jones", "Smith", "Orphan"]
    assert q(org, "SELECT Name FROM Account LIMIT 1")["totalSize"] == 1
    e = err(org, "SELECT Name FROM Account LIMIT 10 OFFSET 2001")
    assert e.error_code == "NUMBER_OUTSIDE_VALID_RANGE"


# ----------------------------------------------------------------- aggregates

def test_count_and_aggregates(org):
    res = q(org, "SELECT COUNT() FROM Account WHERE Industry = 'Banking'")
    assert res == {"totalSize": 2, "done": True, "records": []}
    rec = q(org, "SELECT COUNT(Id), COUNT(AnnualRevenue) n, COUNT_DISTINCT(Industry), SUM(AnnualRevenue), "
                 "AVG(AnnualRevenue), MIN(Name), MAX(AnnualRevenue) FROM Account")["records"][0]
    assert rec == {"attributes": {"type": "AggregateResult"}, "expr0": 4, "n": 2, "expr1": 2, "expr2": 400.0,
                   "expr3": 200.0, "expr4": "Acme", "expr5": 300.0}


def test_group_by_having_order(org):
    recs = q(org, "SELECT Industry, COUNT(Id) c, SUM(AnnualRevenue) FROM Account WHERE Industry != null "
                  "GROUP BY Industry HAVING COUNT(Id) > 0 ORDER BY COUNT(Id) DESC")["records"]
    assert [(r["Industry"], r["c"], r["expr0"]) for r in recs] == [("Banking", 2, 400.0), ("Technology", 1, None)]
    recs = q(org, "SELECT Industry FROM Account GROUP BY Industry HAVING COUNT(Id) > 1")["records"]
    assert [r["Industry"] for r in recs] == ["Banking"]
    recs = q(org, "SELECT Account.Name, COUNT(Id) FROM Contact WHERE AccountId != null GROUP BY Account.Name "
                  "ORDER BY Account.Name")["records"]
    assert [(r["Name"], r["expr0"]) for r in recs] == [("Acme", 2), ("Globex", 1)]
    recs = q(org, "SELECT CALENDAR_YEAR(CloseDate) y, COUNT(Id) FROM Opportunity GROUP BY CALENDAR_YEAR(CloseDate) "
                  "ORDER BY CALENDAR_YEAR(CloseDate)")["records"]
    assert recs[0]["y"] == TODAY.year
    e = err(org, "SELECT Name, COUNT(Id) FROM Account GROUP BY Industry")
    assert e.error_code == "MALFORMED_QUERY" and "Field must be grouped or aggregated: Name" in e.message
    assert err(org, "SELECT Name, COUNT(Id) FROM Account").error_code == "MALFORMED_QUERY"
    assert err(org, "SELECT Name FROM Account WHERE COUNT(Id) > 1").error_code == "MALFORMED_QUERY"
    assert err(org, "SELECT SUM(Name) FROM Account").error_code == "MALFORMED_QUERY"


# ----------------------------------------------------------------- FIELDS() and accepted clauses

def test_fields_functions(org):
    rec = q(org, "SELECT FIELDS(ALL) FROM Account WHERE Name = 'Acme' LIMIT 200")["records"][0]
    assert rec["Name"] == "Acme" and "OwnerId" in rec and "Industry" in rec
    rec = q(org, "SELECT FIELDS(STANDARD) FROM Project__c WHERE Name = 'P1'")["records"][0]
    assert "Name" in rec and "Budget__c" not in rec
    rec = q(org, "SELECT FIELDS(CUSTOM) FROM Project__c WHERE Name = 'P1' LIMIT 1")["records"][0]
    assert set(rec) == {"attributes", "Account__c", "Tags__c", "Budget__c"}
    e = err(org, "SELECT FIELDS(ALL) FROM Account")
    assert e.error_code == "MALFORMED_QUERY" and "LIMIT of at most 200" in e.message
    assert err(org, "SELECT FIELDS(CUSTOM) FROM Account LIMIT 201").error_code == "MALFORMED_QUERY"


@pytest.mark.parametrize("suffix", ["FOR VIEW", "FOR REFERENCE", "FOR UPDATE", "WITH SECURITY_ENFORCED",
                                    "USING SCOPE mine", "with security_enforced"])
def test_accepted_clauses(org, suffix):
    soql = "SELECT Name FROM Account " + (suffix if not suffix.startswith("USING") else suffix)
    if suffix.startswith("USING"):
        soql = f"SELECT Name FROM Account {suffix} WHERE Name = 'Acme'"
    assert "Acme" in names(org, soql)


def test_keywords_as_object_names(org):
    assert q(org, "SELECT Id FROM Order")["totalSize"] == 0
    # Every org has the "All Internal Users" group.
    assert names(org, "SELECT Id, Name FROM Group ORDER BY Name LIMIT 5") == ["All Internal Users"]
    assert q(org, "select Name from account where name like 'a%' order by name desc limit 1")["totalSize"] == 1


# ----------------------------------------------------------------- errors

def test_malformed_query_positions(org):
    e = err(org, "SELECT Id FROM")
    assert e.error_code == "MALFORMED_QUERY"
    assert e.message == "\nSELECT Id FROM\n              ^\nERROR at Row:1:Column:15\nunexpected token: '<EOF>'"
    e = err(org, "SELECT Id FROM Account WHERE Name = 'x' AND")
    assert "unexpected token: '<EOF>'" in e.message
    e = err(org, "SELECT Id FROM Account WHERE Name == 'x'")
    assert "ERROR at Row:1:Column:36" in e.message and "unexpected token: '='" in e.message
    e = err(org, "SELECT Id\nFROM Account\nWHERE Name 'x'")
    assert "\nWHERE Name 'x'\n           ^\nERROR at Row:3:Column:12\nunexpected token: ''x''" == e.message


def test_unknown_field_and_object(org):
    e = err(org, "SELECT Foo FROM Account")
    assert e.error_code == "INVALID_FIELD"
    assert e.message == (
        "\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo' on entity 'Account'. "
        "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. "
        "Please reference your WSDL or the describe call for the appropriate names.")
    e = err(org, "SELECT Id FROM Account WHERE Nope__c = 1")
    assert e.error_code == "INVALID_FIELD" and "Column:30" in e.message
    e = err(org, "SELECT Account.Foo FROM Contact")
    assert e.error_code == "INVALID_FIELD" and "on entity 'Account'" in e.message
    e = err(org, "SELECT Nope.Name FROM Contact")
    assert e.error_code == "INVALID_FIELD" and "Didn't understand relationship 'Nope'" in e.message
    e = err(org, "SELECT Id FROM Foo")
    assert e.error_code == "INVALID_TYPE" and "sObject type 'Foo' is not supported." in e.message
    assert "ERROR at Row:1:Column:16" in e.message
    e = err(org, "SELECT Id, (SELECT Id FROM Nopes) FROM Account")
    assert e.error_code == "INVALID_TYPE" and "Didn't understand relationship 'Nopes'" in e.message


def test_type_mismatch_errors(org):
    e = err(org, "SELECT Id FROM Account WHERE AnnualRevenue = '5'")
    assert e.error_code == "INVALID_FIELD" and "must be of type double and should not be enclosed in quotes" in e.message
    e = err(org, "SELECT Id FROM Account WHERE Name = 5")
    assert "must be of type string and should be enclosed in quotes" in e.message
    e = err(org, "SELECT Id FROM Account WHERE IsDeleted = 'true'")
    assert "must be of type boolean" in e.message
    e = err(org, "SELECT Id, Name, name FROM Account")
    assert "duplicate field selected" in e.message


def test_values_are_parameters_not_sql(org):
    hostile = "x' OR '1'='1"
    escaped = hostile.replace("'", "\\'")
    assert names(org, f"SELECT Name FROM Account WHERE Name = '{escaped}'") == []
    assert names(org, "SELECT Name FROM Account WHERE Name = 'a\"; DROP TABLE \"Account'") == []
    assert q(org, "SELECT COUNT() FROM Account")["totalSize"] == 4
