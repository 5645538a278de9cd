"""Pardot (Account Engagement) API emulation: v5 objects, v4 operations, Import and Export jobs."""
