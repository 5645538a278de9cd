"""The one SQLite store every emulated API reads and writes.

:class:`Store` combines the mixins, one module per job: :mod:`.core` (connection, schema, seeding,
lifecycle, listeners, transactions, shared helpers), :mod:`.records` (create/update/delete/
undelete/upsert), :mod:`.reads` (retrieve, describe, SOQL, SOSL, explain, recent items, blobs),
:mod:`.bulk` (many-row helpers for Bulk and SOAP), :mod:`.replication` (getUpdated/getDeleted) and
:mod:`.seed_records` (seed records: the schema files' ``records``, loaded at start-up and on reset).
"""

from __future__ import annotations

from .bulk import BulkOps
from .core import ChangeEvent, RecordResult, StoreBase
from .reads import RecordReads
from .records import RecordWrites
from .replication import Replication
from .seed import (
    ADMIN_PROFILE_ID,
    ADMIN_USER_ID,
    ADMIN_USERNAME,
    ORG_ID,
    STANDARD_PRICEBOOK_ID,
    STANDARD_PROFILE_ID,
)
from .seed_records import SeedLoading

__all__ = [
    "ADMIN_PROFILE_ID", "ADMIN_USERNAME", "ADMIN_USER_ID", "ORG_ID", "STANDARD_PRICEBOOK_ID",
    "STANDARD_PROFILE_ID", "ChangeEvent", "RecordResult", "Store",
]


class Store(BulkOps, RecordWrites, RecordReads, Replication, SeedLoading, StoreBase):
    """The emulated org's data: SQLite tables for every sObject, CRUD with validation, SOQL.

    The emulator's ``EmulatorState`` reads the seeded org's ids (``ORG_ID``, ``STANDARD_PROFILE_ID``)
    from this class's module, so they are re-exported here.

    :param path: SQLite file, or ``None`` for an in-memory database.
    :param schema_files: schema JSON files (custom objects and fields, seed records).
    """
