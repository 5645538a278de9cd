"""The one reading of Airflow's ``[operators] default_deferrable`` for every operator and sensor."""

from __future__ import annotations


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` (read when a task is built, not at import)."""
    from airflow.configuration import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)
