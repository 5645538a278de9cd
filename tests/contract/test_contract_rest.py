"""REST API: versions, describe, CRUD, SOQL paging, error shapes, sObject Collections."""

from __future__ import annotations

import re

from tests.contract.contract_org import Org

# https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
LIMIT_INFO = re.compile(r"api-usage=\d+/\d+")


def _json(reply) -> object:
    assert reply.headers["Content-Type"].split(";")[0].strip() == "application/json", reply.headers["Content-Type"]
    return reply.json()


def _error(reply, status: int) -> dict:
    """The single error element of a REST error answer (a JSON list of {message, errorCode, ...})."""
    assert reply.status_code == status, (reply.status_code, reply.text[:500])
    body = _json(reply)
    assert isinstance(body, list) and len(body) == 1, body
    assert isinstance(body[0]["message"], str)
    return body[0]


def test_versions_list_the_connections_version(org: Org) -> None:
    versions = _json(org.raw("GET", "/services/data/"))
    version = org.rest.api_version
    assert {"label", "url", "version"} <= set(versions[-1])
    assert {"version": version, "url": f"/services/data/v{version}"}.items() <= \
        next(v for v in versions if v["version"] == version).items()


def test_describe_account(org: Org) -> None:
    reply = org.raw("GET", org.data_path("sobjects/Account/describe"))
    assert reply.status_code == 200
    assert LIMIT_INFO.search(reply.headers["Sforce-Limit-Info"])
    describe = _json(reply)
    assert (describe["name"], describe["keyPrefix"], describe["createable"], describe["queryable"]) == \
        ("Account", "001", True, True)
    fields = {f["name"]: f for f in describe["fields"]}
    assert fields["Id"]["type"] == "id" and fields["Name"]["type"] == "string"
    assert fields["Name"]["nillable"] is False and fields["Name"]["createable"] is True
    assert describe["urls"]["sobject"] == f"/services/data/v{org.rest.api_version}/sobjects/Account"


def test_create_read_update_delete(org: Org) -> None:
    name = org.name("crud")
    created = org.raw("POST", org.data_path("sobjects/Account"), json={"Name": name})
    assert created.status_code == 201
    body = _json(created)
    assert body["success"] is True and body["errors"] == [] and body["id"].startswith("001")
    record_id = body["id"]
    url = org.data_path(f"sobjects/Account/{record_id}")

    record = _json(org.raw("GET", url, params={"fields": "Id,Name"}))
    assert record["attributes"] == {"type": "Account", "url": url}
    assert (record["Id"], record["Name"]) == (record_id, name)

    updated = org.raw("PATCH", url, json={"Name": name + " 2"})
    assert updated.status_code == 204 and not updated.content
    assert _json(org.raw("GET", url, params={"fields": "Name"}))["Name"] == name + " 2"

    deleted = org.raw("DELETE", url)
    assert deleted.status_code == 204 and not deleted.content


def test_not_found(org: Org) -> None:
    # a well-formed Account id that no record has
    error = _error(org.raw("GET", org.data_path("sobjects/Account/001000000000000AAA")), 404)
    assert error == {"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}


def test_malformed_query_and_invalid_field(org: Org) -> None:
    malformed = _error(org.raw("GET", org.data_path("query"), params={"q": "SELEC Id FROM Account"}), 400)
    assert malformed["errorCode"] == "MALFORMED_QUERY"
    invalid = _error(org.raw("GET", org.data_path("query"), params={"q": "SELECT NoSuchField__z FROM Account"}), 400)
    assert invalid["errorCode"] == "INVALID_FIELD"
    assert "No such column 'NoSuchField__z' on entity 'Account'" in invalid["message"]
    unknown = _error(org.raw("GET", org.data_path("query"), params={"q": "SELECT Id FROM NoSuchObject__z"}), 400)
    assert unknown["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'NoSuchObject__z' is not supported" in unknown["message"]


def test_query_pages_through_query_more(org: Org) -> None:
    org.create_accounts(*(f"q{i:03d}" for i in range(201)))
    soql = f"SELECT Id, Name FROM Account WHERE Name LIKE '{org.prefix}%' ORDER BY Name"
    first = _json(org.raw("GET", org.data_path("query"), params={"q": soql},
                          headers={"Sforce-Query-Options": "batchSize=200"}))
    assert (first["totalSize"], first["done"]) == (201, False)
    assert first["nextRecordsUrl"].startswith(f"/services/data/v{org.rest.api_version}/query/")
    second = _json(org.raw("GET", first["nextRecordsUrl"]))
    assert second["done"] is True and "nextRecordsUrl" not in second
    names = [r["Name"] for r in first["records"] + second["records"]]
    assert names == [org.name(f"q{i:03d}") for i in range(201)]
    assert first["records"][0]["attributes"]["type"] == "Account"


def test_collections_partial_failure(org: Org) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": org.name("good")},
               {"attributes": {"type": "Account"}, "Description": "no name"}]
    reply = org.raw("POST", org.data_path("composite/sobjects"), json={"allOrNone": False, "records": records})
    assert reply.status_code == 200
    good, bad = _json(reply)
    assert good["success"] is True and good["errors"] == [] and good["id"].startswith("001")
    assert bad["success"] is False and bad.get("id") is None
    assert bad["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Name]",
                              "fields": ["Name"]}]
