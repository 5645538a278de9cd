"""API versions: the ``/services/data/`` list and parsing ``vXX.X`` path segments."""

from __future__ import annotations

from ..config import API_VERSIONS, MIN_API_VERSION
from ..errors import SalesforceApiError

_SEASONS = ("Summer", "Winter", "Spring")


def release_label(version: str) -> str:
    """Salesforce's release name for an API version (``62.0`` -> ``Winter '25``).

    Three releases a year; 31.0 was Summer '14, and Winter/Spring carry the next year's number.

    :param version: ``"62.0"``.
    """
    offset = int(float(version)) - MIN_API_VERSION
    season = _SEASONS[offset % 3]
    year = 14 + offset // 3 + (0 if season == "Summer" else 1)
    return f"{season} '{year:02d}"


def versions_body() -> list[dict]:
    """The body of ``GET /services/data/``, oldest version first as Salesforce lists them."""
    return [{"label": release_label(v), "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS]


def parse_version(segment: str) -> str:
    """The version of a ``vXX.X`` path segment (``"62.0"``); unknown versions are a 404.

    :param segment: e.g. ``"v62.0"``.
    :raises SalesforceApiError: ``NOT_FOUND`` for a version not served.
    """
    version = segment[1:] if segment.startswith("v") else ""
    if version not in API_VERSIONS:
        raise SalesforceApiError("NOT_FOUND", "The requested resource does not exist", status=404)
    return version


def version_number(version: str) -> float:
    """``"46.0"`` -> ``46.0`` (for "since API x" behaviour switches).

    :param version: a version string.
    """
    return float(version)
