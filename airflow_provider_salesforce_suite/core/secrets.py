"""The one place that talks to Airflow's secrets masker.

Every secret (password, keys, tokens, session ids) is registered here as soon as it is known, and
every text we put into an exception goes through :func:`redact_text`.
"""

from __future__ import annotations

import re

# Salesforce session ids / access tokens: a 15-18 char org id, "!", then the opaque part.
_TOKEN_RE = re.compile(r"\b00[A-Za-z0-9]{13,16}![A-Za-z0-9._\-]{10,}")
_BEARER_RE = re.compile(r"(?i)(bearer\s+|sessionId>|X-SFDC-Session:\s*)[^\s<\"']+")


def mask(secret: str | None, name: str | None = None) -> None:
    """Register ``secret`` with Airflow's masker (task process and supervisor)."""
    if not secret:
        return
    from airflow.sdk.log import mask_secret

    mask_secret(secret, name)


def redact_text(text: str) -> str:
    """Remove registered secrets and anything shaped like a Salesforce token from ``text``."""
    text = _TOKEN_RE.sub("***", text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + "***", text)
    try:
        from airflow.sdk._shared.secrets_masker import redact

        redacted = redact(text)
        return redacted if isinstance(redacted, str) else text
    except Exception:  # the masker is best effort; the regexes above already ran
        return text
