"""Shapes definitions into the REST API's describe results (``/sobjects``, ``/describe``)."""

from __future__ import annotations

from typing import Any

from .model import ID_TYPES, TEXT_TYPES, FieldDef, Metadata, ObjectDef


def version_path(api_version: str) -> str:
    """``/services/data/v64.0`` for ``64.0`` or ``v64.0``.

    :param api_version: an API version.
    """
    return f"/services/data/v{api_version.lstrip('vV')}"


def object_urls(obj: ObjectDef, api_version: str) -> dict[str, str]:
    """The ``urls`` map of an object describe.

    :param obj: the object.
    :param api_version: API version of the request.
    """
    base = f"{version_path(api_version)}/sobjects/{obj.name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "describe": f"{base}/describe",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def basic_info(obj: ObjectDef, api_version: str) -> dict[str, Any]:
    """The per-object entry of describeGlobal (also ``objectDescribe`` of ``GET /sobjects/X``).

    :param obj: the object.
    :param api_version: API version of the request.
    """
    event = obj.kind == "event"
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": obj.createable,
        "custom": obj.custom,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": obj.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": not event and obj.kind == "standard",
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": not event,
        "mergeable": obj.name in ("Account", "Contact", "Lead", "Case"),
        "mruEnabled": not event,
        "name": obj.name,
        "queryable": obj.queryable,
        "replicateable": not event,
        "retrieveable": not event,
        "searchable": not event,
        "triggerable": True,
        "undeletable": obj.deletable and not event,
        "updateable": obj.updateable,
        "urls": object_urls(obj, api_version),
    }


def _field_describe(obj: ObjectDef, fdef: FieldDef) -> dict[str, Any]:
    is_text = fdef.type in TEXT_TYPES
    filterable = fdef.type not in ("textarea", "base64")
    default = fdef.default_value
    if fdef.type in ("picklist", "multipicklist") and default is None:
        default = None
    return {
        "aggregatable": filterable and fdef.type != "boolean",
        "aiPredictionField": False,
        "autoNumber": fdef.auto_number,
        "byteLength": fdef.length * 3 if is_text or fdef.type in ID_TYPES else 0,
        "calculated": fdef.computed is not None,
        "calculatedFormula": None,
        "cascadeDelete": fdef.cascade_delete,
        "caseSensitive": False,
        "compoundFieldName": "Name" if fdef.name in ("FirstName", "LastName", "Salutation")
        and obj.field("Name") is not None and obj.field("Name").computed else None,
        "controllerName": None,
        "createable": fdef.createable,
        "custom": fdef.custom,
        "defaultValue": default,
        "defaultValueFormula": None,
        "defaultedOnCreate": fdef.defaulted_on_create,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": fdef.digits,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": fdef.external_id,
        "extraTypeInfo": {"textarea": "plaintextarea", "url": None}.get(fdef.type)
        if fdef.type == "textarea" else None,
        "filterable": filterable,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": filterable and fdef.type not in ("double", "currency", "percent", "datetime"),
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": fdef.id_lookup,
        "inlineHelpText": None,
        "label": fdef.label,
        "length": fdef.length,
        "mask": None,
        "maskType": None,
        "name": fdef.name,
        "nameField": fdef.name_field,
        "namePointing": fdef.type == "reference" and len(fdef.reference_to) > 1,
        "nillable": fdef.nillable,
        "permissionable": fdef.nillable and fdef.createable and not fdef.name_field,
        "picklistValues": [
            {"active": p.active, "defaultValue": p.default, "label": p.label, "validFor": None,
             "value": p.value}
            for p in fdef.picklist
        ],
        "polymorphicForeignKey": fdef.type == "reference" and len(fdef.reference_to) > 1,
        "precision": fdef.precision,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(fdef.reference_to),
        "relationshipName": fdef.relationship_name,
        "relationshipOrder": 0 if fdef.cascade_delete and fdef.custom else None,
        "restrictedDelete": False,
        "restrictedPicklist": fdef.restricted_picklist,
        "scale": fdef.scale,
        "searchPrefilterable": fdef.type == "reference",
        "soapType": fdef.soap_type,
        "sortable": filterable,
        "type": fdef.type,
        "unique": fdef.unique,
        "updateable": fdef.updateable,
        "writeRequiresMasterRead": False,
    }


MASTER_RECORD_TYPE_ID = "012000000000000AAA"


def record_type_infos(obj: ObjectDef, api_version: str) -> list[dict[str, Any]]:
    """Describe's ``recordTypeInfos``: the object's record types, then Master (always last).

    Master is the default (and available) only while the object has no active record type of its own.

    :param obj: the object.
    :param api_version: API version of the request.
    """
    layouts = f"{version_path(api_version)}/sobjects/{obj.name}/describe/layouts/"
    own = any(rt.active for rt in obj.record_types)
    infos = [
        {"active": rt.active, "available": rt.active, "defaultRecordTypeMapping": rt.default,
         "developerName": rt.developer_name, "master": False, "name": rt.name, "recordTypeId": rt.id,
         "urls": {"layout": layouts + rt.id}}
        for rt in sorted(obj.record_types, key=lambda rt: rt.name.lower())
    ]
    infos.append({"active": True, "available": not own, "defaultRecordTypeMapping": not own,
                  "developerName": "Master", "master": True, "name": "Master",
                  "recordTypeId": MASTER_RECORD_TYPE_ID, "urls": {"layout": layouts + MASTER_RECORD_TYPE_ID}})
    return infos


def describe_object(metadata: Metadata, obj: ObjectDef, api_version: str) -> dict[str, Any]:
    """The full ``/sobjects/X/describe`` result.

    :param metadata: the registry (unused today; child relationships are precomputed).
    :param obj: the object.
    :param api_version: API version of the request.
    """
    result = basic_info(obj, api_version)
    result.update(
        {
            "actionOverrides": [],
            "childRelationships": [
                {
                    "cascadeDelete": rel.cascade_delete,
                    "childSObject": rel.child_sobject,
                    "deprecatedAndHidden": False,
                    "field": rel.field,
                    "junctionIdListNames": [],
                    "junctionReferenceTo": [],
                    "relationshipName": rel.relationship_name,
                    "restrictedDelete": False,
                }
                # Salesforce lists them by child object; sorting also keeps the order independent of
                # the order schema files define objects in.
                for rel in sorted(obj.child_relationships, key=lambda r: (r.child_sobject, r.field))
            ],
            "compactLayoutable": obj.kind != "event",
            "dataTranslationEnabled": False,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [_field_describe(obj, f) for f in obj.fields.values()],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": record_type_infos(obj, api_version) if obj.kind != "event" else [],
            "searchLayoutable": obj.kind != "event",
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [
                {"label": "All " + obj.label_plural.lower(), "name": "everything"},
                *([{"label": "My " + obj.label_plural.lower(), "name": "mine"}]
                  if obj.field("OwnerId") else []),
            ],
        }
    )
    return dict(sorted(result.items()))


def describe_global(metadata: Metadata, api_version: str) -> dict[str, Any]:
    """The ``/sobjects`` (describeGlobal) result.

    :param metadata: the registry.
    :param api_version: API version of the request.
    """
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [basic_info(o, api_version) for o in sorted(metadata.objects.values(), key=lambda o: o.name)],
    }


__all__ = ["MASTER_RECORD_TYPE_ID", "basic_info", "describe_global", "describe_object", "record_type_infos",
           "version_path"]
