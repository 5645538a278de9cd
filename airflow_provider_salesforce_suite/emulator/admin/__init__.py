"""The emulator's control API under ``/__emulator__/`` (no Salesforce client calls it)."""

from __future__ import annotations
