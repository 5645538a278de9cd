"""Apache Airflow provider for the whole Salesforce suite, with a local Salesforce emulator."""

from __future__ import annotations

__version__ = "0.1.0"
