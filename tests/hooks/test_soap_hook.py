"""SalesforceSoapHook against the emulator's partner SOAP endpoint, through zeep and the shared session."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import pytest

from airflow_provider_salesforce_suite.core.errors import (
    SalesforceMalformedQueryError,
    SalesforceOutcomeUnknownError,
    SalesforceSessionExpiredError,
    SalesforceSoapFaultError,
    SalesforceSoapInvalidTypeError,
)
from airflow_provider_salesforce_suite.hooks._soap import client as soap_client
from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook

TRICKY = "Smith & Sons <Ltd> — Zoë, 東京 \"q\" 'a'"


def _soap_calls(admin) -> int:
    return sum(n for key, n in admin.stats()["requests"].items() if key.startswith("POST /services/Soap/u/"))


@pytest.fixture
def hook(sf_conn) -> SalesforceSoapHook:
    return SalesforceSoapHook(sf_conn())


def test_wsdl_parsed_once_per_process(sf_conn) -> None:
    soap_client.clear_client_cache()
    first = SalesforceSoapHook(sf_conn()).get_conn()
    parsed = dict(soap_client.PARSE_SECONDS)
    other = SalesforceSoapHook(sf_conn("sf_other")).get_conn()
    assert other is not first and other.wsdl is first.wsdl  # one parsed document, one client per hook
    assert soap_client.PARSE_SECONDS == parsed and len(parsed) == 1  # not parsed again
    start = time.perf_counter()
    soap_client.build_client(other.transport.session, "https://example.invalid/services/Soap/u/64.0")
    assert time.perf_counter() - start < min(0.05, list(parsed.values())[0])


def test_transport_is_the_shared_session(hook) -> None:
    client = hook.get_conn()
    assert client.transport.session is hook.session
    assert "file://" not in hook.session.adapters
    assert client.settings.forbid_dtd and client.settings.forbid_entities and client.settings.forbid_external


def test_create_query_round_trip_with_types_and_special_characters(hook, emulator_admin) -> None:
    results = hook.create([{"type": "Account", "Name": TRICKY, "NumberOfEmployees": 12, "AnnualRevenue": 2500}])
    assert results[0]["success"] and results[0]["errors"] == [] and len(results[0]["id"]) == 18
    rows = list(hook.query(f"SELECT Id, Name, NumberOfEmployees, AnnualRevenue, CreatedDate, IsDeleted "
                           f"FROM Account WHERE Id = '{results[0]['id']}'"))
    assert len(rows) == 1
    row = rows[0]
    assert row["type"] == "Account" and row["Id"] == results[0]["id"] and row["Name"] == TRICKY
    assert row["NumberOfEmployees"] == 12 and row["AnnualRevenue"] == 2500.0 and row["IsDeleted"] is False
    assert isinstance(row["CreatedDate"], datetime) and row["CreatedDate"].tzinfo is not None


def test_dates_nulls_and_fields_to_null(hook) -> None:
    [saved] = hook.create([{"type": "Opportunity", "Name": "Deal", "StageName": "Prospecting",
                            "CloseDate": date(2030, 1, 31), "Amount": 10.5, "Description": "to blank"}])
    assert saved["success"], saved
    [updated] = hook.update([{"type": "Opportunity", "Id": saved["id"], "Description": None, "Amount": 11}])
    assert updated["success"], updated
    [row] = hook.retrieve("Opportunity", [saved["id"]], ["Name", "CloseDate", "Amount", "Description"])
    assert row["CloseDate"] == date(2030, 1, 31) and row["Amount"] == 11.0 and row["Description"] is None


def test_create_is_split_into_calls_of_200_with_per_record_errors(hook, emulator_admin) -> None:
    records = [{"Name": f"Bulk {i}"} if i % 100 else {"Industry": "no name"} for i in range(450)]
    before = _soap_calls(emulator_admin)
    results = hook.create(records, sobject="Account")
    assert len(results) == 450
    failed = [i for i, r in enumerate(results) if not r["success"]]
    assert failed == [0, 100, 200, 300, 400]
    assert results[0]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING" and results[0]["id"] is None
    creates = _soap_calls(emulator_admin) - before
    assert creates == 3 + 0  # 200 + 200 + 50, no describe needed for saving
    assert hook.calls == 3


def test_query_is_lazy_over_query_more(hook, emulator_admin) -> None:
    hook.create([{"Name": f"Q {i:04d}"} for i in range(1100)], sobject="Account")
    before = _soap_calls(emulator_admin)
    rows = hook.query("SELECT Id, Name FROM Account ORDER BY Name", batch_size=500)
    assert _soap_calls(emulator_admin) == before  # nothing sent until iterated
    first = next(rows)
    assert first["Name"] == "Q 0000"
    rest = list(rows)
    assert len(rest) == 1099 and rest[-1]["Name"] == "Q 1099"
    # query + 2 queryMore + one describe for typing
    assert _soap_calls(emulator_admin) - before == 4


def test_relationships_are_nested_dicts(hook) -> None:
    [account] = hook.create([{"type": "Account", "Name": "Parent Co"}])
    hook.create([{"type": "Contact", "LastName": f"C{i}", "AccountId": account["id"]} for i in range(2)])
    [contact] = list(hook.query("SELECT Id, LastName, Account.Name FROM Contact WHERE LastName = 'C0'"))
    assert contact["Account"]["Name"] == "Parent Co" and contact["Account"]["type"] == "Account"
    [parent] = list(hook.query("SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName) FROM Account "
                               f"WHERE Id = '{account['id']}'"))
    assert [c["LastName"] for c in parent["Contacts"]["records"]] == ["C0", "C1"]


def test_upsert_delete_undelete_empty_recycle_bin(hook) -> None:
    created = hook.create([{"type": "Account", "Name": f"D{i}"} for i in range(3)])
    ids = [r["id"] for r in created]
    upserted = hook.upsert("Id", [{"type": "Account", "Id": ids[0], "Name": "D0 renamed"}])
    assert upserted[0]["success"] and upserted[0]["created"] is False
    deleted = hook.delete(ids)
    assert all(r["success"] for r in deleted)
    assert list(hook.query("SELECT Id FROM Account WHERE Name LIKE 'D%'")) == []
    assert len(list(hook.query_all("SELECT Id FROM Account WHERE Name LIKE 'D%' AND IsDeleted = true"))) == 3
    restored = hook.undelete(ids[:2])
    assert [r["success"] for r in restored] == [True, True]
    purged = hook.empty_recycle_bin([ids[2]])
    assert purged[0]["success"] and purged[0]["id"] == ids[2]
    assert len(list(hook.query("SELECT Id FROM Account WHERE Name LIKE 'D%'"))) == 2


def test_malformed_query_fault(hook) -> None:
    with pytest.raises(SalesforceSoapFaultError) as err:
        list(hook.query("SELECT Id FORM Account"))
    assert isinstance(err.value, SalesforceMalformedQueryError)
    assert err.value.error_code == "MALFORMED_QUERY" and err.value.fault_code.endswith("MALFORMED_QUERY")


def test_invalid_field_fault(hook) -> None:
    with pytest.raises(SalesforceMalformedQueryError) as err:
        list(hook.query("SELECT Nope__c FROM Account"))
    assert err.value.error_code == "INVALID_FIELD" and err.value.fault_type == "InvalidFieldFault"


def test_invalid_sobject_fault(hook) -> None:
    with pytest.raises(SalesforceSoapFaultError) as err:
        hook.describe_sobject("NoSuchObject__c")
    assert err.value.error_code == "INVALID_TYPE"


@pytest.mark.parametrize("call", [
    lambda hook: hook.create([{"type": "Nope__c", "Name": "x"}]),
    lambda hook: hook.upsert("Id", [{"type": "Nope__c", "Name": "x"}]),
    lambda hook: hook.retrieve("Nope__c", ["001000000000001AAA"], ["Id"]),
    lambda hook: hook.describe_sobject("Nope__c"),
], ids=["create", "upsert", "retrieve", "describeSObject"])
def test_unknown_sobject_outside_a_query_is_invalid_type_not_a_query_error(hook, call) -> None:
    # Salesforce faults sf:INVALID_TYPE with an InvalidSObjectFault; only in a query is that a query error.
    with pytest.raises(SalesforceSoapInvalidTypeError) as err:
        call(hook)
    assert not isinstance(err.value, SalesforceMalformedQueryError)
    assert err.value.error_code == "INVALID_TYPE" and err.value.fault_type == "InvalidSObjectFault"
    assert "INVALID_TYPE" in str(err.value) and "sObject type 'Nope__c' is not supported" in str(err.value)


def test_unknown_sobject_in_a_query_stays_a_query_error(hook) -> None:
    with pytest.raises(SalesforceMalformedQueryError) as err:
        list(hook.query("SELECT Id FROM Nope__c"))
    assert err.value.error_code == "INVALID_TYPE" and err.value.row == 1


def test_expired_session_reauthenticates_once_and_replays(hook, emulator_admin) -> None:
    assert hook.get_user_info()["userName"]
    emulator_admin.expire_sessions()
    before = _soap_calls(emulator_admin)
    assert hook.get_user_info()["userName"]
    assert _soap_calls(emulator_admin) - before == 2  # rejected, then replayed with the fresh token


def test_expired_session_replays_a_create_with_the_same_records(hook, emulator_admin) -> None:
    assert hook.create([{"type": "Account", "Name": "before"}])[0]["success"]
    emulator_admin.expire_sessions()
    before = _soap_calls(emulator_admin)
    results = hook.create([{"type": "Account", "Name": f"replayed {i}", "Site": None} for i in range(3)])
    assert [r["success"] for r in results] == [True] * 3 and _soap_calls(emulator_admin) - before == 2
    rows = list(hook.query("SELECT Name FROM Account WHERE Name LIKE 'replayed%' ORDER BY Name"))
    assert [r["Name"] for r in rows] == ["replayed 0", "replayed 1", "replayed 2"]  # sent once, in full


def test_session_auth_type_cannot_reauthenticate(sf_conn, hook, emulator_admin) -> None:
    token = hook.session.token
    session_hook = SalesforceSoapHook(sf_conn("sf_session", extra={"auth_type": "session",
                                                                   "session_id": token.access_token,
                                                                   "instance_url": token.instance_url}))
    emulator_admin.expire_sessions()
    with pytest.raises(SalesforceSessionExpiredError) as err:
        session_hook.get_user_info()
    assert token.access_token not in str(err.value)


def test_describe_global_and_sobject(hook) -> None:
    described = hook.describe_global()
    names = {s["name"] for s in described["sobjects"]}
    assert {"Account", "Contact", "Lead"} <= names
    account = hook.describe_sobject("Account")
    fields = {f["name"]: f for f in account["fields"]}
    assert fields["Name"]["type"] == "string" and fields["Id"]["soapType"] == "tns:ID"
    many = hook.describe_sobjects(["Account", "Contact"])
    assert [d["name"] for d in many] == ["Account", "Contact"]


def test_search_and_org_calls(hook) -> None:
    hook.create([{"type": "Account", "Name": "Findable Unique"}])
    found = hook.search("FIND {Findable} IN NAME FIELDS RETURNING Account(Id, Name)")
    assert [r["Name"] for r in found] == ["Findable Unique"]
    now = hook.get_server_timestamp()
    assert abs((now - datetime.now(timezone.utc)).total_seconds()) < 120
    updated = hook.get_updated("Account", now - timedelta(minutes=5), now + timedelta(minutes=1))
    assert len(updated["ids"]) >= 1


def test_convert_lead_and_merge(hook) -> None:
    [lead] = hook.create([{"type": "Lead", "LastName": "Lee", "Company": "Lee & Co"}])
    [converted] = hook.convert_lead([{"leadId": lead["id"], "convertedStatus": "Closed - Converted",
                                      "doNotCreateOpportunity": True}])
    assert converted["success"], converted
    assert converted["accountId"] and converted["contactId"] and converted["opportunityId"] is None
    a, b = hook.create([{"type": "Account", "Name": "Master"}, {"type": "Account", "Name": "Dupe"}])
    [merged] = hook.merge([{"masterRecord": {"type": "Account", "Id": a["id"], "Description": "merged"},
                            "recordToMergeIds": [b["id"]]}])
    assert merged["success"] and merged["mergedRecordIds"] == [b["id"]]
    [master] = hook.retrieve("Account", [a["id"]], ["Description"])
    assert master["Description"] == "merged"


def test_per_call_headers(hook) -> None:
    results = hook.create([{"type": "Account", "Name": "ok"}, {"type": "Account"}],
                          headers={"AllOrNoneHeader": {"allOrNone": True}})
    assert [r["success"] for r in results] == [False, False]
    assert list(hook.query("SELECT Id FROM Account WHERE Name = 'ok'")) == []


@pytest.mark.parametrize("call,message", [
    (lambda h: h.create("Account"), "must be a list"),
    (lambda h: h.create([{"Name": "no type"}]), "sObject type"),
    (lambda h: h.create([{"type": "Account", "Bad Field": 1}]), "not a Salesforce field name"),
    (lambda h: h.create([{"type": "Account", "Name": "x\x01"}]), "XML cannot carry"),
    (lambda h: h.create([{"type": "Account", "Name": object()}]), "cannot send"),
    (lambda h: list(h.query("SELECT Id FROM Account", batch_size=10)), "batch_size"),
    (lambda h: list(h.query("  ")), "soql"),
    (lambda h: h.create([{"type": "Account", "Name": "x"}], headers={"QueryOptions": {"batchSize": 200}}),
     "do not apply"),
    (lambda h: h.create([{"type": "Account", "Name": "x"}], headers={"SessionHeader": {"sessionId": "x"}}),
     "unknown SOAP header"),
    (lambda h: h.call("noSuchOperation"), "not a partner SOAP operation"),
    (lambda h: h.call("query", queryStrin="SELECT Id FROM Account"), "invalid arguments"),
    (lambda h: h.convert_lead([{"leadId": "00Q000000000001AAA"}]), "convertedStatus"),
    (lambda h: h.merge([{"masterRecord": {"type": "Account"}}]), "recordToMergeIds"),
    (lambda h: h.retrieve("Account", ["001000000000001AAA"], "Name"), "fields"),
])
def test_bad_input(hook, call, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call(hook)


# -- query pages: read from the XML directly (hooks/_soap/pages.py), same records as the zeep path ----
def _zeep_pages(hook, operation: str, soql: str) -> list[list[dict]]:
    """The pages as zeep reads them: ``call`` always goes through zeep and ``RecordReader.plain``."""
    headers = {"QueryOptions": {"batchSize": 200}}
    result = hook.call(operation, headers=headers, queryString=soql)
    pages = [result["records"]]
    while not result["done"] and result["queryLocator"]:
        result = hook.call("queryMore", headers=headers, queryLocator=result["queryLocator"])
        pages.append(result["records"])
    return pages


@pytest.fixture
def related(hook) -> list[str]:
    """250 accounts (a parent each, some nulls) with 2 contacts each (dates, booleans, nulls)."""
    [top] = hook.create([{"type": "Account", "Name": "Top & Co", "NumberOfEmployees": 7}])
    accounts = hook.create([{"type": "Account", "Name": f"Acc {i:03d}", "ParentId": top["id"],
                             "NumberOfEmployees": i if i % 3 else None, "AnnualRevenue": i * 1.5}
                            for i in range(250)])
    contacts = [{"type": "Contact", "LastName": f"L{i:03d}-{j}", "AccountId": a["id"], "DoNotCall": bool(j),
                 "Birthdate": date(1990, 1, 1) + timedelta(days=i) if i % 4 else None}
                for i, a in enumerate(accounts) for j in range(2)]
    assert all(r["success"] for r in hook.create(contacts))
    return [a["id"] for a in accounts]


@pytest.mark.parametrize("operation,soql", [
    ("query", "SELECT Id, LastName, Birthdate, DoNotCall, CreatedDate, Account.Name, Account.NumberOfEmployees, "
              "Account.AnnualRevenue, Account.Parent.Name, ReportsTo.LastName FROM Contact ORDER BY LastName"),
    ("queryAll", "SELECT Name, NumberOfEmployees, AnnualRevenue, IsDeleted, Parent.Name, "
                 "(SELECT LastName, DoNotCall, Birthdate FROM Contacts ORDER BY LastName) FROM Account ORDER BY Name"),
    ("query", "SELECT AccountId, COUNT(Id) n, MAX(Birthdate) latest FROM Contact GROUP BY AccountId"),
])
def test_query_pages_match_the_zeep_path(hook, related, operation, soql) -> None:
    fast = list(hook.query_pages(soql, include_deleted=operation == "queryAll", batch_size=200))
    assert len(fast) >= 2 and sum(map(len, fast)) >= 250
    # repr: same keys in the same order, same values of the same types (1 != 1.0 != True there)
    assert repr(fast) == repr(_zeep_pages(hook, operation, soql))
    direct = _read_directly(hook, operation, soql)  # the hook's pages were not zeep's fallback
    assert direct is not None and repr(direct.records) == repr(fast[0])


def _read_directly(hook, operation: str, soql: str):
    """The first page posted by hand and read by ``read_query_page`` (None: it would fall back to zeep)."""
    from airflow_provider_salesforce_suite.core.safexml import xml_text
    from airflow_provider_salesforce_suite.hooks._soap.pages import read_query_page

    token = hook.session.token.access_token
    envelope = ('<?xml version="1.0" encoding="utf-8"?><e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"'
                ' xmlns:p="urn:partner.soap.sforce.com"><e:Header><p:SessionHeader><p:sessionId>'
                f'{token}</p:sessionId></p:SessionHeader><p:QueryOptions><p:batchSize>200</p:batchSize>'
                f'</p:QueryOptions></e:Header><e:Body><p:{operation}><p:queryString>{xml_text(soql)}'
                f"</p:queryString></p:{operation}></e:Body></e:Envelope>")
    response = hook.session.post(hook.soap_url, data=envelope.encode(),
                                 headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
    return read_query_page(response.status_code, response.content, operation, hook._reader)


def test_query_pages_are_read_without_zeep(hook, related) -> None:
    soql = ("SELECT Name, Parent.Name, (SELECT LastName FROM Contacts ORDER BY LastName) FROM Account "
            "WHERE Name LIKE 'Acc 00%' ORDER BY Name")
    page = _read_directly(hook, "query", soql)
    assert page is not None and page.done is True and page.query_locator is None and page.size == 10
    assert page.records == _zeep_pages(hook, "query", soql)[0]
    assert page.records[0]["Parent"]["Name"] == "Top & Co"
    assert [c["LastName"] for c in page.records[0]["Contacts"]["records"]] == ["L000-0", "L000-1"]


def test_query_more_is_a_page_dict(hook, related) -> None:
    first = hook.call("query", headers={"QueryOptions": {"batchSize": 200}},
                      queryString="SELECT Id, Name FROM Account ORDER BY Name")
    more = hook.query_more(first["queryLocator"])
    assert list(more) == ["done", "queryLocator", "records", "size"]
    assert more["done"] is True and more["queryLocator"] is None and more["size"] == 251
    assert [r["Name"] for r in more["records"]] == [f"Acc {i:03d}" for i in range(200, 250)] + ["Top & Co"]


def test_query_page_faults_keep_code_and_message(hook) -> None:
    with pytest.raises(SalesforceMalformedQueryError) as err:
        next(hook.query_pages("SELECT Id FROM Account WHERE", batch_size=200))
    assert err.value.error_code == "MALFORMED_QUERY" and "unexpected token" in err.value.message
    assert (err.value.row, err.value.column, err.value.method) == (1, 29, "QUERY")
    with pytest.raises(SalesforceMalformedQueryError) as err:
        next(hook.query_pages("SELECT Nope__c FROM Account", include_deleted=True))
    assert err.value.error_code == "INVALID_FIELD" and "Nope__c" in err.value.message
    assert err.value.method == "QUERYALL"
    with pytest.raises(SalesforceMalformedQueryError) as err:
        hook.query_more("01gD0000000bogus-200")
    assert err.value.error_code == "INVALID_QUERY_LOCATOR" and err.value.fault_type == "InvalidQueryLocatorFault"
    assert err.value.method == "QUERYMORE" and err.value.message


def test_session_expiry_mid_paging_reauthenticates_once(hook, emulator_admin) -> None:
    hook.create([{"Name": f"P {i:03d}"} for i in range(450)], sobject="Account")
    pages = hook.query_pages("SELECT Id, Name FROM Account ORDER BY Name", batch_size=200)
    first = next(pages)
    token = hook.session.token.access_token
    emulator_admin.expire_sessions()
    before = _soap_calls(emulator_admin)
    rest = list(pages)
    assert [len(first)] + [len(p) for p in rest] == [200, 200, 50]
    assert rest[-1][-1]["Name"] == "P 449"
    assert _soap_calls(emulator_admin) - before == 3  # rejected queryMore, its replay, the last page
    assert hook.session.token.access_token != token


# -- lost replies: the write was committed, the reply never arrived ----------------------------------
def _names(hook, prefix: str) -> list[str]:
    return sorted(r["Name"] for r in hook.query(f"SELECT Name FROM Account WHERE Name LIKE '{prefix}%'"))


def test_lost_create_reply_is_outcome_unknown_per_record_and_never_re_sent(hook, emulator_admin) -> None:
    before = _soap_calls(emulator_admin)
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/services/Soap")
    results = hook.create([{"type": "Account", "Name": "Lost 1"}, {"type": "Account", "Name": "Lost 2"}])
    assert _soap_calls(emulator_admin) - before == 1  # sent once, not replayed
    assert [(r["success"], r["id"], r["errors"][0]["statusCode"]) for r in results] == \
        [(False, None, "OUTCOME_UNKNOWN")] * 2
    message = results[0]["errors"][0]["message"]
    assert "SOAP create was sent, but its reply was lost" in message and "records may have been created" in message
    assert _names(hook, "Lost") == ["Lost 1", "Lost 2"]  # committed once: no duplicates


def test_lost_replies_of_converging_writes_are_replayed(hook, emulator_admin) -> None:
    ids = [r["id"] for r in hook.create([{"type": "Account", "Name": f"Conv {i}"} for i in range(2)])]
    for call in (lambda: hook.update([{"type": "Account", "Id": ids[0], "Name": "Conv 0b"}]),
                 lambda: hook.upsert("Id", [{"type": "Account", "Id": ids[1], "Name": "Conv 1b"}]),
                 lambda: hook.delete(ids)):
        before = _soap_calls(emulator_admin)
        emulator_admin.fault(lose_reply=True, count=1, path_prefix="/services/Soap")
        results = call()
        assert _soap_calls(emulator_admin) - before == 2  # the lost call, then the same call again
        assert all(r["success"] and not r["errors"] for r in results), results
    assert _names(hook, "Conv") == []  # updated, upserted, then deleted: no duplicate anywhere
    assert hook.delete([ids[0]])[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"  # a real second delete


def test_reads_are_replayed_after_a_lost_reply(hook, emulator_admin) -> None:
    hook.create([{"type": "Account", "Name": "Readable"}])
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/services/Soap")
    assert [r["Name"] for r in hook.query("SELECT Name FROM Account")] == ["Readable"]
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/services/Soap")
    assert hook.describe_sobject("Account")["name"] == "Account"


def test_lost_convert_lead_reply_raises_outcome_unknown(hook, emulator_admin) -> None:
    lead = hook.create([{"type": "Lead", "LastName": "Lost", "Company": "Lost Co"}])[0]["id"]
    emulator_admin.fault(lose_reply=True, count=1, path_prefix="/services/Soap")
    with pytest.raises(SalesforceOutcomeUnknownError, match="SOAP convertLead was sent, but its reply was lost.*"
                                                            "leads may have been converted"):
        hook.convert_lead([{"leadId": lead, "convertedStatus": "Closed - Converted"}])
    assert len(list(hook.query("SELECT Id FROM Account WHERE Name = 'Lost Co'"))) == 1  # converted once
