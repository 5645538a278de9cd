"""``python -m airflow_provider_salesforce_suite.emulator``: same as ``salesforce-suite-emulator``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
