"""The one place that talks to Airflow's secrets masker.

Every secret (password, keys, tokens, session ids) is registered here as soon as it is known, in
every form it can take on the wire (:func:`wire_forms`: URL-encoded in a form body, JSON- or
XML-escaped, inside a Basic ``Authorization`` header), so an endpoint or proxy that echoes a request
back cannot leak it through an error message, a log line or XCom. Every text we put into an
exception goes through :func:`redact_text`.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape

# Salesforce session ids / access tokens: a 15-18 char org id, "!", then the opaque part.
_TOKEN_RE = re.compile(r"\b00[A-Za-z0-9]{13,16}![A-Za-z0-9._\-]{10,}")
_BEARER_RE = re.compile(r"(?i)(bearer\s+|sessionId>|X-SFDC-Session:\s*)[^\s<\"']+")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def wire_forms(secret: str, username: str | None = None) -> list[str]:
    """``secret`` and the encodings it takes in requests and in replies that echo them.

    Plain; URL-encoded as in a path or query (``%20``) and as in a form body (``+``), with upper- and
    lower-case hex; JSON-escaped (ASCII-only and not, ``/`` escaped or not); XML-escaped; and, when
    ``username`` is known, the Basic-auth base64 of ``username:secret``. Encodings are per character,
    so a secret sent glued to another (password + security token) is covered too.

    :param secret: the secret.
    :param username: the user it is paired with in Basic auth (Desk's email, a Connected App's key).
    """
    forms = {secret, escape(secret, {'"': "&quot;", "'": "&apos;"}), escape(secret)}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms |= {encoded, _PERCENT_ESCAPE.sub(lambda m: m.group(0).lower(), encoded)}
    for ascii_only in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/")}
    if username:
        forms.add(base64.b64encode(f"{username}:{secret}".encode()).decode("ascii"))
    return sorted(forms)


def mask(secret: str | None, name: str | None = None, *, username: str | None = None) -> None:
    """Register ``secret``, in all its :func:`wire_forms`, with Airflow's masker (task process and supervisor).

    :param secret: the secret (nothing happens when empty).
    :param name: the field name, as Airflow's ``mask_secret`` takes it.
    :param username: the user paired with it in Basic auth, if any.
    """
    if not secret:
        return
    from airflow.sdk.log import mask_secret

    mask_secret(wire_forms(secret, username), name)


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
