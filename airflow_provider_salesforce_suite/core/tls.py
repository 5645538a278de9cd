"""What a TLS failure means and what fixes it, in one place for requests, aiohttp and gRPC.

OpenSSL reports a certificate problem as a verify code (``ssl.SSLCertVerificationError``) or, through
gRPC, as text. Both are read here into a plain reason (self-signed, unknown CA, wrong host name,
expired) and the fix for that reason: only a certificate nobody here trusts is fixed by the
connection's ``ca_bundle`` extra; a wrong host name or an expired certificate is not.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

SELF_SIGNED = "self_signed"
UNKNOWN_CA = "unknown_ca"
HOSTNAME = "hostname"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
HANDSHAKE = "handshake"

_TRUST_HINT = ("Make the connection trust the CA that signed it: set the extra 'ca_bundle' to a PEM file holding "
               "that CA, or 'verify': false (testing only)")
_REASONS: dict[str, tuple[str, str]] = {
    SELF_SIGNED: ("the server's certificate is self-signed, or issued by a private CA this machine does not trust",
                  _TRUST_HINT),
    UNKNOWN_CA: ("the server's certificate is signed by a CA this machine does not trust (a private CA, or a "
                 "TLS-inspecting proxy's)", _TRUST_HINT + "; behind such a proxy, ask for its CA certificate"),
    HOSTNAME: ("the server's certificate is not valid for {host}",
               "Use a host name the certificate names (for Salesforce your My Domain URL, e.g. "
               "https://acme.my.salesforce.com; for the emulator 127.0.0.1 or localhost); ca_bundle does not help"),
    EXPIRED: ("the server's certificate has expired (or this machine's clock is wrong)",
              "Renew the certificate on the server or proxy, or fix the clock; ca_bundle does not help"),
    NOT_YET_VALID: ("the server's certificate is not valid yet (is this machine's clock right?)",
                    "Fix the clock; ca_bundle does not help"),
    HANDSHAKE: ("the TLS handshake failed",
                "Check the server's or proxy's TLS setup (protocol version, client certificate); a certificate "
                "signed by a private CA needs the extra 'ca_bundle'"),
}
# OpenSSL X509_V_ERR_* codes.
_BY_CODE = {2: UNKNOWN_CA, 9: NOT_YET_VALID, 10: EXPIRED, 18: SELF_SIGNED, 19: SELF_SIGNED, 20: UNKNOWN_CA,
            21: UNKNOWN_CA, 62: HOSTNAME, 64: HOSTNAME}
# The same, as OpenSSL/BoringSSL (gRPC) and Python word them; checked in this order.
_BY_TEXT = (
    ("self signed", SELF_SIGNED), ("self-signed", SELF_SIGNED),
    ("unable to get local issuer", UNKNOWN_CA), ("unable to verify the first certificate", UNKNOWN_CA),
    ("unable to get issuer", UNKNOWN_CA),
    ("certificate has expired", EXPIRED), ("certificate is not yet valid", NOT_YET_VALID),
    ("hostname mismatch", HOSTNAME), ("ip address mismatch", HOSTNAME), ("doesn't match", HOSTNAME),
    ("not in peer certificate", HOSTNAME), ("not valid for", HOSTNAME),
)
#: Words in a failure's text that show it happened in the TLS layer (gRPC folds it into UNAVAILABLE).
TLS_MARKERS = ("handshake failed", "certificate_verify_failed", "certificate verify failed", "ssl_error_ssl",
               "tsi_protocol_failure")


def tls_kind(errors: Iterable[BaseException] = (), text: str = "") -> str:
    """The kind of a TLS failure (:data:`SELF_SIGNED`, :data:`UNKNOWN_CA`, :data:`HOSTNAME`,
    :data:`EXPIRED`, :data:`NOT_YET_VALID` or :data:`HANDSHAKE`).

    :param errors: the exception and what it wraps (the first verify code found decides).
    :param text: the failure's text (gRPC details, messages without a verify code).
    """
    texts = [text]
    for error in errors:
        code = getattr(error, "verify_code", None)
        if isinstance(error, ssl.SSLCertVerificationError) and code in _BY_CODE:
            return _BY_CODE[code]
        if isinstance(error, ssl.CertificateError) and not isinstance(error, ssl.SSLError):
            return HOSTNAME  # match_hostname's own error (older code paths)
        texts.append(str(getattr(error, "verify_message", None) or error))
    lowered = " ".join(texts).lower()
    return next((kind for words, kind in _BY_TEXT if words in lowered), HANDSHAKE)


def looks_like_tls_failure(text: str) -> bool:
    """Whether a failure's text (gRPC details) says the TLS handshake or certificate check failed."""
    lowered = text.lower()
    return any(marker in lowered for marker in TLS_MARKERS)


def explain_tls(kind: str, host: str) -> tuple[str, str]:
    """``(reason, fix)`` in plain words for a :func:`tls_kind`.

    :param kind: the failure's kind.
    :param host: the host the client connected to.
    """
    reason, hint = _REASONS.get(kind, _REASONS[HANDSHAKE])
    return reason.format(host=host), hint
