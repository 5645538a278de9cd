"""Unit tests of the emulator's metadata: ids, standard objects, describe, custom schema, validation."""

from __future__ import annotations

import json

import pytest

from airflow_provider_salesforce_suite.emulator import ids
from airflow_provider_salesforce_suite.emulator.errors import SalesforceApiError
from airflow_provider_salesforce_suite.emulator.metadata import SchemaError, load_metadata
from airflow_provider_salesforce_suite.emulator.metadata.validation import RecordValidator
from airflow_provider_salesforce_suite.emulator.store import Store

V = "64.0"


@pytest.fixture(scope="module")
def store():
    s = Store()
    yield s
    s.close()


@pytest.fixture()
def schema_file(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({
        "objects": {
            "Invoice__c": {
                "label": "Invoice", "pluralLabel": "Invoices",
                "fields": {
                    "Amount__c": {"type": "currency", "precision": 10, "scale": 2, "required": True},
                    "Code__c": {"type": "text", "length": 10, "externalId": True, "unique": True},
                    "Account__c": {"type": "lookup", "referenceTo": "Account", "childRelationshipName": "Invoices"},
                    "Tags__c": {"type": "multipicklist", "values": ["a", "b", "c"]},
                    "Paid__c": {"type": "checkbox"},
                },
            },
            "Line__c": {"nameField": {"type": "autonumber"}, "fields": {
                "Invoice__c": {"type": "masterdetail", "referenceTo": "Invoice__c", "childRelationshipName": "Lines"},
            }},
            "Shipped__e": {"fields": {"OrderRef__c": {"type": "text", "length": 18}}},
        },
        "fields": {"Account": {"Region__c": {"type": "picklist", "values": ["EMEA", "AMER"]},
                               "Ext__c": {"type": "text", "externalId": True}}},
    }))
    return path


# ----------------------------------------------------------------- ids

def test_checksum_matches_salesforce_examples():
    assert ids.to_18("00D000000000062") == "00D000000000062EAA"
    assert ids.to_18("005000000000001") == "005000000000001AAA"
    assert ids.to_18("001Ab000000xYzQ").endswith(ids.checksum("001Ab000000xYzQ"))


def test_normalize_rejects_bad_ids():
    assert ids.normalize("005000000000001") == "005000000000001AAA"
    assert ids.normalize("005000000000001aaa") == "005000000000001AAA"
    assert ids.normalize("005000000000001ZZZ") is None  # checksum mismatch
    assert ids.normalize("short") is None
    assert ids.normalize("00500000000000!") is None


def test_generator_is_unique_and_valid():
    gen = ids.IdGenerator()
    made = gen.new_ids("001", 1000)
    assert len(set(made)) == 1000
    assert all(ids.normalize(i) == i and i.startswith("001") for i in made)
    assert ids.IdGenerator.counter_of(made[-1]) == 1000


# ----------------------------------------------------------------- standard objects and describe

def test_all_required_standard_objects_with_prefixes():
    meta = load_metadata()
    expected = {"Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006", "OpportunityLineItem": "00k",
                "Case": "500", "Task": "00T", "Event": "00U", "User": "005", "Profile": "00e", "Group": "00G",
                "Campaign": "701", "CampaignMember": "00v", "Product2": "01t", "Pricebook2": "01s",
                "PricebookEntry": "01u", "Contract": "800", "Order": "801", "Asset": "02i", "Attachment": "00P",
                "Document": "015", "Folder": "00l", "Note": "002", "ContentVersion": "068",
                "ContentDocument": "069", "EmailMessage": "02s", "Organization": "00D", "RecordType": "012",
                "PushTopic": "0IF", "StreamingChannel": "0M6"}
    for name, prefix in expected.items():
        assert meta.get(name).key_prefix == prefix, name
        assert meta.by_prefix(prefix).name == name


def test_describe_account_fields_and_relationships(store):
    d = store.describe("account", api_version=V)
    assert d["name"] == "Account" and d["keyPrefix"] == "001" and d["labelPlural"] == "Accounts"
    assert d["urls"]["sobject"] == "/services/data/v64.0/sobjects/Account"
    fields = {f["name"]: f for f in d["fields"]}
    assert fields["Name"]["nillable"] is False and fields["Name"]["nameField"] is True
    assert fields["Name"]["type"] == "string" and fields["Name"]["length"] == 255
    assert fields["Name"]["soapType"] == "xsd:string"
    assert fields["Id"]["type"] == "id" and fields["Id"]["createable"] is False
    assert fields["AnnualRevenue"]["type"] == "currency" and fields["AnnualRevenue"]["soapType"] == "xsd:double"
    assert fields["OwnerId"]["referenceTo"] == ["Group", "User"] and fields["OwnerId"]["relationshipName"] == "Owner"
    industry = [p["value"] for p in fields["Industry"]["picklistValues"]]
    assert "Banking" in industry and "Technology" in industry
    assert set(fields["Rating"]["picklistValues"][0]) == {"active", "defaultValue", "label", "validFor", "value"}
    rels = {r["relationshipName"]: r for r in d["childRelationships"]}
    assert rels["Contacts"]["childSObject"] == "Contact" and rels["Contacts"]["field"] == "AccountId"
    assert rels["Contacts"]["cascadeDelete"] is True
    assert d["recordTypeInfos"][0]["master"] is True
    for key in ("createable", "updateable", "deletable", "queryable", "searchable", "retrieveable", "undeletable",
                "supportedScopes", "custom"):
        assert key in d


def test_required_fields_and_picklist_defaults(store):
    opp = {f["name"]: f for f in store.describe("Opportunity", api_version=V)["fields"]}
    assert opp["StageName"]["restrictedPicklist"] is True and opp["StageName"]["nillable"] is False
    assert opp["CloseDate"]["type"] == "date" and opp["CloseDate"]["nillable"] is False
    lead = {f["name"]: f for f in store.describe("Lead", api_version=V)["fields"]}
    status = lead["Status"]
    assert status["defaultedOnCreate"] is True
    assert [p["value"] for p in status["picklistValues"] if p["defaultValue"]] == ["Open - Not Contacted"]
    push = {f["name"]: f for f in store.describe("PushTopic", api_version=V)["fields"]}
    assert push["ApiVersion"]["type"] == "double" and push["Query"]["nillable"] is False


def test_describe_global_and_basic_info(store):
    g = store.describe_global(api_version=V)
    names = [o["name"] for o in g["sobjects"]]
    assert "Account" in names and g["maxBatchSize"] == 200
    acc = next(o for o in g["sobjects"] if o["name"] == "Account")
    assert acc["urls"]["rowTemplate"] == "/services/data/v64.0/sobjects/Account/{ID}"
    info = store.sobject_basic_info("User", api_version=V)
    assert info["objectDescribe"]["keyPrefix"] == "005"
    assert info["recentItems"][0]["Name"] == "Emulator Admin"


def test_unknown_object_is_rest_not_found(store):
    with pytest.raises(SalesforceApiError) as exc:
        store.describe("Nope", api_version=V)
    assert exc.value.error_code == "NOT_FOUND" and exc.value.status == 404
    assert exc.value.message == "The requested resource does not exist"


# ----------------------------------------------------------------- custom schema

def test_custom_schema_objects_fields_and_relationships(schema_file):
    store = Store(schema_files=[schema_file])
    inv = store.describe("Invoice__c", api_version=V)
    assert inv["custom"] is True and inv["keyPrefix"].startswith("a0")
    fields = {f["name"]: f for f in inv["fields"]}
    assert fields["Name"]["nameField"] and fields["OwnerId"]["type"] == "reference"
    assert fields["Code__c"]["externalId"] and fields["Code__c"]["unique"] and fields["Code__c"]["custom"]
    assert fields["Account__c"]["relationshipName"] == "Account__r"
    assert fields["Amount__c"]["precision"] == 10 and fields["Amount__c"]["scale"] == 2
    acc = store.describe("Account", api_version=V)
    assert any(r["relationshipName"] == "Invoices__r" for r in acc["childRelationships"])
    assert any(f["name"] == "Region__c" for f in acc["fields"])
    line = {f["name"]: f for f in store.describe("Line__c", api_version=V)["fields"]}
    assert line["Name"]["autoNumber"] and "OwnerId" not in line  # master-detail children have no owner
    assert line["Invoice__c"]["cascadeDelete"] is True
    event = store.describe("Shipped__e", api_version=V)
    assert event["keyPrefix"].startswith("e0") and event["queryable"] is False
    store.close()


def test_schema_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"objects": {"Foo": {}}}))
    with pytest.raises(SchemaError):
        load_metadata([bad])
    bad.write_text(json.dumps({"fields": {"Account": {"X__c": {"type": "lookup", "referenceTo": "Nope__c"}}}}))
    with pytest.raises(SchemaError):
        load_metadata([bad])


def test_a_standard_object_entry_extends_it_with_the_files_lengths_and_picklists(tmp_path):
    path = tmp_path / "org.json"
    path.write_text(json.dumps({"objects": {"Account": {"fields": {
        "Industry": {"type": "picklist", "values": ["Space", {"value": "Old", "active": False}], "restricted": False},
        "Name": {"length": 300},
        "Tier__c": {"type": "text"},
    }}}}))
    store = Store(schema_files=[path])
    try:
        fields = {f["name"]: f for f in store.describe("Account", api_version=V)["fields"]}
        assert [(p["value"], p["active"]) for p in fields["Industry"]["picklistValues"]] == [("Space", True), ("Old", False)]
        assert fields["Industry"]["restrictedPicklist"] is False and fields["Name"]["length"] == 300
        assert fields["Tier__c"]["custom"] and fields["Name"]["nameField"]  # the rest of Name is the emulator's
    finally:
        store.close()


def _as_list_form(path) -> dict:
    """The ``schema_file`` document in the list form ``docs/emulator.md`` shows."""
    keyed = json.loads(path.read_text())
    return {
        "objects": [{"name": name, **spec, "fields": [{"name": f, **fs} for f, fs in spec.get("fields", {}).items()]}
                    for name, spec in keyed["objects"].items()],
        "fields": {obj: [{"name": f, **fs} for f, fs in fields.items()] for obj, fields in keyed["fields"].items()},
    }


def test_schema_list_form_describes_like_the_keyed_form(schema_file, tmp_path):
    listed = tmp_path / "listed.json"
    listed.write_text(json.dumps(_as_list_form(schema_file)))
    keyed_store, list_store = Store(schema_files=[schema_file]), Store(schema_files=[listed])
    try:
        for name in ("Invoice__c", "Line__c", "Shipped__e", "Account"):
            assert list_store.describe(name, api_version=V) == keyed_store.describe(name, api_version=V)
    finally:
        keyed_store.close()
        list_store.close()


@pytest.mark.parametrize("document,problem", [
    ("{not json", "is not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"object": {}}', "unknown key(s) 'object'"),
    ('{"objects": "Invoice__c"}', "objects must be an object keyed by name or a list"),
    ('{"objects": [{"label": "No name"}]}', 'objects[0] must be an object with a "name"'),
    ('{"objects": [{"name": "A__c", "fields": [{"type": "text"}]}]}', 'fields of A__c[0] must be an object with a "name"'),
    ('{"objects": {"A__c": {"fields": {"B__c": "text"}}}}', "fields of A__c: 'B__c' must be an object, got str"),
    ('{"fields": {"Account": [{"name": "N__c", "type": "number", "precision": "wide"}]}}',
     "fields.Account.N__c.precision: 'wide' is not of type 'integer'"),
    ('{"objects": {"A__c": {"fields": {"B__c": {"type": "text", "externalID": true}}}}}',
     "objects.A__c.fields.B__c: Additional properties are not allowed ('externalID' was unexpected)"),
    ('{"objects": {"A__c": {"fields": {"B__c": {"type": "texte"}}}}}', "objects.A__c.fields.B__c.type: 'texte' is not one of"),
    ('{"objects": {"A__c": {"keyPrefix": "a0"}}}', "objects.A__c.keyPrefix: 'a0' does not match"),
    ('{"objects": {"Widget": {"fields": {}}}}', "objects.Widget: custom object 'Widget' must end with '__c'"),
    ('{"objects": {"Widget": {"complete": true, "fields": {}}}}', "objects.Widget: the emulator has no standard object"),
    ('{"objects": {"A__c": {"keyPrefix": "001"}}}', "objects.A__c.keyPrefix: '001' is already the key prefix of Account"),
    ('{"objects": {"Account": {"fields": {"Industry": {"values": [7]}}}}}', "objects.Account.fields.Industry.values[0]: 7 is not"),
    ('{"records": {"Nope__c": []}}', "records.Nope__c: unknown object 'Nope__c'"),
    ('{"records": {"Account": [{"Name": "A"}, {"Name": {"x": 1}}]}}', "records.Account[1].Name: {'x': 1} is not of type"),
])
def test_malformed_schema_file_names_the_file_and_the_problem(tmp_path, document, problem):
    bad = tmp_path / "custom_objects.json"
    bad.write_text(document)
    with pytest.raises(SchemaError) as err:
        load_metadata([bad])
    assert f"schema file {str(bad)!r}" in str(err.value) and problem in str(err.value)
    with pytest.raises(SchemaError, match="cannot be read"):
        load_metadata([tmp_path / "missing.json"])


# ----------------------------------------------------------------- validation

@pytest.fixture(scope="module")
def account_validator():
    meta = load_metadata()
    return RecordValidator(meta.get("Account"), meta)


def _err(validator, values, creating=True):
    with pytest.raises(SalesforceApiError) as exc:
        validator.clean(values, creating=creating)
    return exc.value


def test_validation_converts_types(account_validator):
    out = account_validator.clean({"name": "Acme", "AnnualRevenue": "12.5", "NumberOfEmployees": 3.0,
                                   "attributes": {"type": "Account"}, "Industry": "banking", "Website": ""},
                                  creating=True)
    assert out == {"Name": "Acme", "AnnualRevenue": 12.0, "NumberOfEmployees": 3, "Industry": "banking",
                   "Website": None}


def test_validation_errors(account_validator):
    e = _err(account_validator, {"Industry": "Banking"})
    assert (e.error_code, e.message, e.fields) == ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"])
    e = _err(account_validator, {"Name": "x", "Foo": 1})
    assert e.error_code == "INVALID_FIELD" and e.message == "No such column 'Foo' on sobject of type Account"
    e = _err(account_validator, {"Name": "x", "CreatedDate": "2026-01-01T00:00:00Z"})
    assert e.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE" and e.fields == ["CreatedDate"]
    e = _err(account_validator, {"Name": "x" * 256})
    assert e.error_code == "STRING_TOO_LONG" and "max length=255" in e.message
    e = _err(account_validator, {"Name": "x", "AnnualRevenue": "lots"})
    assert e.error_code == "JSON_PARSER_ERROR" and "double" in e.message and e.status == 400
    e = _err(account_validator, {"Name": "x", "NumberOfEmployees": 1.5})
    assert e.error_code == "JSON_PARSER_ERROR"
    e = _err(account_validator, {"Name": "x", "ParentId": "nonsense"})
    assert e.error_code == "MALFORMED_ID"
    e = _err(account_validator, {"Name": "x", "ParentId": "003000000000001AAA"})
    assert e.error_code == "FIELD_INTEGRITY_EXCEPTION"
    e = _err(account_validator, {"Id": "001000000000001AAA", "Name": "x"})
    assert e.error_code == "INVALID_FIELD"
    e = _err(account_validator, {"Name": None}, creating=False)
    assert e.error_code == "REQUIRED_FIELD_MISSING"


def test_restricted_picklist_dates_and_checkboxes():
    meta = load_metadata()
    opp = RecordValidator(meta.get("Opportunity"), meta)
    base = {"Name": "o", "StageName": "Prospecting", "CloseDate": "2026-11-28"}
    assert opp.clean(base, creating=True)["CloseDate"] == "2026-11-28"
    e = _err(opp, {**base, "StageName": "Dreaming"})
    assert e.error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert e.message == "Stage: bad value for restricted picklist field: Dreaming"
    e = _err(opp, {**base, "CloseDate": "28/11/2026"})
    assert e.error_code == "JSON_PARSER_ERROR" and "date" in e.message
    ev = RecordValidator(meta.get("Event"), meta)
    out = ev.clean({"StartDateTime": "2026-11-28T02:02:03+01:00", "IsAllDayEvent": "true"}, creating=True)
    assert out["StartDateTime"] == "2026-11-28T01:02:03.000+0000" and out["IsAllDayEvent"] == 1
    assert _err(ev, {"IsAllDayEvent": "yes"}).error_code == "JSON_PARSER_ERROR"
    contact = RecordValidator(meta.get("Contact"), meta)
    assert _err(contact, {"LastName": "x", "Email": "not-an-email"}).error_code == "INVALID_EMAIL_ADDRESS"
