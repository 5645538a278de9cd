"""The package's optional dependencies (its extras), checked before the work that needs them.

A feature that needs an extra calls :func:`require_extra` first: without it the user gets one error
naming the extra and the ``pip install`` line, rather than a bare ``ModuleNotFoundError`` from deep
inside a half-done task. The check looks modules up without importing them (it stays cheap).
"""

from __future__ import annotations

import importlib.util

from airflow_provider_salesforce_suite.core.errors import SalesforceMissingExtraError

DISTRIBUTION = "airflow-provider-salesforce-suite"

#: Extra -> the modules it provides (as imported), as pyproject.toml's optional dependencies install them.
EXTRAS: dict[str, tuple[str, ...]] = {
    "parquet": ("pyarrow",),
    "pubsub": ("grpc", "grpc_tools", "fastavro"),
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module with no spec
        return False


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` this environment lacks (empty when it is installed).

    :param extra: a key of :data:`EXTRAS`.
    """
    return [module for module in EXTRAS[extra] if not _importable(module)]


def extra_installed(extra: str) -> bool:
    """Whether every module of ``extra`` can be imported.

    :param extra: a key of :data:`EXTRAS`.
    """
    return not missing_modules(extra)


def require_extra(extra: str, feature: str) -> None:
    """Raise :class:`SalesforceMissingExtraError` unless ``extra`` is installed.

    :param extra: a key of :data:`EXTRAS`.
    :param feature: what needs it, in the user's words (``"Reading or writing Parquet"``, ``"The Pub/Sub API"``).
    """
    missing = missing_modules(extra)
    if missing:
        raise SalesforceMissingExtraError(extra, feature, missing)
