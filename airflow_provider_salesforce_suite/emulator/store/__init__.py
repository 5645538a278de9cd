"""The one SQLite store every emulated API reads and writes.

:class:`Store` combines the mixins, one module per job: :mod:`.core` (connection, schema, seeding,
lifecycle, listeners, transactions, shared helpers), :mod:`.records` (create/update/delete/
undelete/upsert), :mod:`.reads` (retrieve, describe, SOQL, SOSL, explain, recent items, blobs),
:mod:`.bulk` (many-row helpers for Bulk and SOAP) and :mod:`.replication` (getUpdated/getDeleted).
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

__all__ = [
    "ADMIN_PROFILE_ID", "ADMIN_USERNAME", "ADMIN_USER_ID", "ORG_ID", "STANDARD_PRICEBOOK_ID",
    "STANDARD_PROFILE_ID", "ChangeEvent", "RecordResult", "Store",
]


class Store(BulkOps, RecordWrites, RecordReads, Replication, StoreBase):
    """The emulated org's data: SQLite tables for every sObject, CRUD with validation, SOQL.

    The emulator's ``EmulatorState`` reads the seeded org's ids (``ORG_ID``, ``STANDARD_PROFILE_ID``)
    from this class's module, so they are re-exported here.

    :param path: SQLite file, or ``None`` for an in-memory database.
    :param schema_files: custom schema JSON files (custom objects and fields).
    """
