"""SOAP partner API: create, query (and a parent's nested sObject), a fault's code."""

from __future__ import annotations

import pytest

from airflow_provider_salesforce_suite.core.errors import SalesforceSoapFaultError
from airflow_provider_salesforce_suite.core.safexml import local_name, parse_xml_safely, xml_text
from airflow_provider_salesforce_suite.hooks.soap import SalesforceSoapHook
from tests.contract.contract_org import Org

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def test_create_and_query(org: Org) -> None:
    soap = SalesforceSoapHook(org.conn_id)
    name = org.name("soap")
    (result,) = soap.create([{"Name": name}], sobject="Account")
    assert result["success"] is True and result["id"].startswith("001") and not result["errors"]
    (record,) = list(soap.query(f"SELECT Id, Name FROM Account WHERE Name = '{name}'"))
    assert (record["type"], record["Id"], record["Name"]) == ("Account", result["id"], name)


def test_malformed_query_fault(org: Org) -> None:
    with pytest.raises(SalesforceSoapFaultError) as caught:
        list(SalesforceSoapHook(org.conn_id).query("SELEC Id FROM Account"))
    fault = caught.value
    assert (fault.status, fault.error_code, fault.fault_code, fault.fault_type) == \
        (500, "MALFORMED_QUERY", "sf:MALFORMED_QUERY", "MalformedQueryFault")


def test_nested_parent_has_a_nil_id_unless_selected(org: Org) -> None:
    # https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_partner_queries.htm:
    # with the partner WSDL, a query without Id returns one null Id field (nested parents too).
    (account_id,) = org.create_accounts("soap parent")
    contact = org.rest.create("Contact", {"LastName": org.name("soap child"), "AccountId": account_id})
    org.on_teardown(lambda: org.rest.delete("Contact", contact))
    soap = SalesforceSoapHook(org.conn_id)
    token = soap.authenticator.get_token().access_token
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader>'
        f"<urn:sessionId>{xml_text(token)}</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:query>"
        f"<urn:queryString>SELECT LastName, Account.Name FROM Contact WHERE Id = '{contact}'</urn:queryString>"
        "</urn:query></soapenv:Body></soapenv:Envelope>")
    reply = org.raw("POST", soap.soap_url, data=envelope.encode(),
                    headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'})
    assert reply.status_code == 200
    root = parse_xml_safely(reply.content)
    (records,) = [el for el in root.iter() if local_name(el.tag) == "records"]
    (account,) = [el for el in records if local_name(el.tag) == "Account"]
    children = [(local_name(el.tag), el.get(XSI_NIL), el.text) for el in account]
    assert children == [("type", None, "Account"), ("Id", "true", None), ("Name", None, org.name("soap parent"))]
