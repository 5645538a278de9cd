"""Integration tests start real processes (the emulator, Airflow's components): ``-m integration``
selects them, ``-m "not integration"`` leaves them out; ``make test`` runs them."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "integration: starts real Airflow and emulator processes (slower)")
