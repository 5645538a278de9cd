"""Object definitions, describe shaping and record validation for the emulated org."""

from __future__ import annotations

from .loader import load_metadata
from .model import ChildRelationship, FieldDef, Metadata, ObjectDef, PicklistValue, SeedRecords
from .schema import SchemaError

__all__ = [
    "ChildRelationship", "FieldDef", "Metadata", "ObjectDef", "PicklistValue", "SchemaError",
    "SeedRecords",
    "load_metadata",
]
