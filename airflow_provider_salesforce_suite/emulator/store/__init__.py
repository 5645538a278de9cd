"""The one SQLite store every emulated API reads and writes (see :mod:`.core`)."""

from __future__ import annotations

from .core import (
    ADMIN_PROFILE_ID,
    ADMIN_USER_ID,
    ADMIN_USERNAME,
    ORG_ID,
    STANDARD_PRICEBOOK_ID,
    STANDARD_PROFILE_ID,
    ChangeEvent,
    RecordResult,
    Store,
)

__all__ = [
    "ADMIN_PROFILE_ID", "ADMIN_USERNAME", "ADMIN_USER_ID", "ORG_ID", "STANDARD_PRICEBOOK_ID",
    "STANDARD_PROFILE_ID", "ChangeEvent", "RecordResult", "Store",
]
