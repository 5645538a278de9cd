"""The metadata model: sObject and field definitions, and the registry of all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SalesforceApiError

#: Field types whose values are stored as SQLite TEXT and compared case-insensitively.
TEXT_TYPES = frozenset(
    {"string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone", "url",
     "encryptedstring", "base64"}
)
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})

SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "double": "xsd:double",
    "currency": "xsd:double", "percent": "xsd:double", "int": "xsd:int", "date": "xsd:date",
    "datetime": "xsd:dateTime", "time": "xsd:time", "base64": "xsd:base64Binary",
}


@dataclass
class PicklistValue:
    """One picklist entry.

    :param value: API value.
    :param label: display label.
    :param default: whether it is the default on create.
    :param active: whether it is active.
    """

    value: str
    label: str
    default: bool = False
    active: bool = True


@dataclass
class FieldDef:
    """One field of an sObject, with everything describe and validation need.

    :param name: canonical API name (``AccountId``, ``Region__c``).
    :param type: Salesforce field type (``string``, ``reference``, ``datetime`` ...).
    :param label: display label.
    """

    name: str
    type: str
    label: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    default_value: Any = None
    unique: bool = False
    external_id: bool = False
    id_lookup: bool = False
    name_field: bool = False
    auto_number: bool = False
    custom: bool = False
    picklist: list[PicklistValue] = field(default_factory=list)
    restricted_picklist: bool = False
    reference_to: list[str] = field(default_factory=list)
    relationship_name: str | None = None
    child_relationship_name: str | None = None
    cascade_delete: bool = False
    computed: str | None = None  # "fullname": derived from FirstName/LastName by the store
    #: A rule beyond the type, e.g. a PushTopic's Query must be valid SOQL: raises SalesforceApiError.
    check: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    @property
    def soap_type(self) -> str:
        """The describe ``soapType``."""
        return SOAP_TYPES.get(self.type, "xsd:string")

    @property
    def sql_type(self) -> str:
        """The SQLite column declaration for this field."""
        if self.type in ("double", "currency", "percent"):
            return "REAL"
        if self.type in ("int", "boolean"):
            return "INTEGER"
        if self.type in TEXT_TYPES:
            # Salesforce compares and sorts text case-insensitively.
            return "TEXT COLLATE NOCASE"
        return "TEXT"  # ids are case-sensitive; dates sort as ISO text

    @property
    def required_on_create(self) -> bool:
        """Whether a create without this field fails with REQUIRED_FIELD_MISSING."""
        return (
            not self.nillable
            and self.createable
            and not self.defaulted_on_create
            and self.type != "boolean"
        )

    @property
    def picklist_values(self) -> dict[str, str]:
        """Lower-cased active picklist value -> canonical value."""
        return {p.value.lower(): p.value for p in self.picklist if p.active}


@dataclass
class ChildRelationship:
    """A child relationship as seen from the parent object.

    :param child_sobject: the child object's name.
    :param field: the child's reference field pointing at the parent.
    :param relationship_name: the name used in SOQL subqueries (``Contacts``).
    :param cascade_delete: whether deleting the parent deletes the children.
    """

    child_sobject: str
    field: str
    relationship_name: str | None
    cascade_delete: bool = False


@dataclass(frozen=True)
class RecordTypeInfo:
    """One record type of an object, as describe's ``recordTypeInfos`` lists it.

    :param id: the RecordType row's 18-char id.
    :param name: its ``Name``.
    :param developer_name: its ``DeveloperName``.
    :param active: its ``IsActive``.
    :param default: whether records created without ``RecordTypeId`` get it.
    """

    id: str
    name: str
    developer_name: str
    active: bool
    default: bool


@dataclass
class ObjectDef:
    """One sObject type.

    :param name: API name.
    :param label: singular label.
    :param label_plural: plural label.
    :param key_prefix: 3-char id prefix.
    :param kind: ``standard``, ``custom`` or ``event`` (platform event).
    """

    name: str
    label: str
    label_plural: str
    key_prefix: str
    kind: str = "standard"
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    queryable: bool = True
    #: Configuration rather than business data (Profile, LeadStatus ...): not covered by searches.
    setup: bool = False
    fields: dict[str, FieldDef] = field(default_factory=dict)
    child_relationships: list[ChildRelationship] = field(default_factory=list)
    #: The object's RecordType rows (besides Master), kept in step with the data by the store.
    record_types: list[RecordTypeInfo] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lower: dict[str, FieldDef] = {}
        self._relationships: dict[str, FieldDef] = {}
        self._children: dict[str, ChildRelationship] = {}

    @property
    def custom(self) -> bool:
        """Whether this is a custom object or platform event."""
        return self.kind != "standard"

    def add_field(self, fdef: FieldDef) -> None:
        """Add (or replace) a field.

        :param fdef: the field.
        """
        self.fields[fdef.name] = fdef
        self._lower[fdef.name.lower()] = fdef
        if fdef.relationship_name:
            self._relationships[fdef.relationship_name.lower()] = fdef

    def add_child(self, rel: ChildRelationship) -> None:
        """Register a child relationship.

        :param rel: the relationship.
        """
        self.child_relationships.append(rel)
        if rel.relationship_name:
            self._children[rel.relationship_name.lower()] = rel

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name``, case-insensitively.

        :param name: a field name in any casing.
        """
        return self._lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field behind parent relationship ``name`` (``Account``, ``Foo__r``).

        :param name: a relationship name in any casing.
        """
        return self._relationships.get(name.lower())

    def child(self, name: str) -> ChildRelationship | None:
        """The child relationship called ``name`` (``Contacts``), case-insensitively.

        :param name: a child relationship name.
        """
        return self._children.get(name.lower())

    @property
    def name_field(self) -> FieldDef | None:
        """The object's name field (``Name``, ``CaseNumber`` ...)."""
        return next((f for f in self.fields.values() if f.name_field), None)


@dataclass
class SeedRecords:
    """Records a schema file seeds the org with (loaded by the store at start-up and on reset).

    :param source: where they come from (the schema file's path), for errors.
    :param records: object name -> records (field name -> value as the REST API takes it).
    """

    source: str
    records: dict[str, list[dict[str, Any]]]


class Metadata:
    """Registry of every sObject the emulated org knows, and the records schema files seed.

    Build it with :func:`~.loader.load_metadata`.
    """

    def __init__(self) -> None:
        self.objects: dict[str, ObjectDef] = {}
        self._lower: dict[str, ObjectDef] = {}
        self._prefixes: dict[str, ObjectDef] = {}
        self.seed_records: list[SeedRecords] = []

    def add(self, obj: ObjectDef) -> None:
        """Register an object.

        :param obj: the object.
        """
        self.objects[obj.name] = obj
        self._lower[obj.name.lower()] = obj
        self._prefixes[obj.key_prefix] = obj

    def get(self, name: str) -> ObjectDef | None:
        """The object called ``name`` case-insensitively, or ``None``.

        :param name: an sObject name.
        """
        return self._lower.get(name.lower())

    def require(self, name: str) -> ObjectDef:
        """The object called ``name``, or the REST API's 404 ``NOT_FOUND``.

        :param name: an sObject name.
        """
        obj = self.get(name)
        if obj is None:
            raise SalesforceApiError("NOT_FOUND", "The requested resource does not exist", status=404)
        return obj

    def by_prefix(self, prefix: str) -> ObjectDef | None:
        """The object whose ids start with ``prefix``.

        :param prefix: a 3-char key prefix.
        """
        return self._prefixes.get(prefix)

    def link_relationships(self) -> None:
        """(Re)compute every object's child relationships from the reference fields."""
        for obj in self.objects.values():
            obj.child_relationships.clear()
            obj._children.clear()
        for obj in self.objects.values():
            for fdef in obj.fields.values():
                if fdef.type != "reference" or not fdef.child_relationship_name:
                    continue
                for parent_name in fdef.reference_to:
                    parent = self.get(parent_name)
                    if parent is not None:
                        parent.add_child(
                            ChildRelationship(
                                obj.name, fdef.name, fdef.child_relationship_name, fdef.cascade_delete
                            )
                        )
