"""PardotHook's object and job APIs, split from :mod:`...hooks.pardot` (the connection layer)."""
