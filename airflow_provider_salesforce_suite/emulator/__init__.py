"""A local Salesforce emulator: a real HTTPS server speaking Salesforce's wire protocols.

One sub-package per API (``oauth``, ``rest``, ``admin`` ...), all sharing one SQLite store
(:mod:`.store`) and one error type (:mod:`.errors`) rendered once per wire format.
"""

from __future__ import annotations
