"""The Desk.com API v2 emulation under ``/api/v2``: HAL JSON, Basic and OAuth 1.0a auth, paging
links, ETags, rate-limit headers and Desk's error shapes, over SQLite tables of its own.

Salesforce retired the hosted Desk.com service in March 2020; this surface exists so the
provider's Desk hook and operators can be exercised end to end.
"""
