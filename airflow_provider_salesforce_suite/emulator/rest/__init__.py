"""The REST API: ``/services/data`` (versions, resources, sObjects, describe, query, limits)."""

from __future__ import annotations
