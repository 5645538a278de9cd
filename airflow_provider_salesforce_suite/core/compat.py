"""Connections of the official ``apache-airflow-providers-salesforce`` (conn type ``salesforce``).

That provider hands its extras to simple-salesforce, which picks the auth flow from which values
are present. :func:`official_extras` renames those extras to ours and names the flow the same way,
so a ``salesforce`` connection works with every hook here unchanged. The mapping is documented in
docs/migration.md; a value both spellings give differently is refused, never silently chosen.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from airflow_provider_salesforce_suite.core.config import (
    OFFICIAL_CONN_TYPE,
    PRODUCTION_LOGIN_URL,
    SANDBOX_LOGIN_URL,
    _blank,
    normalize_url,
)
from airflow_provider_salesforce_suite.core.errors import SalesforceConfigError

__all__ = ["OFFICIAL_CONN_TYPE", "official_extras", "official_login_url"]

#: official extra -> ours, where only the name differs.
RENAMED = {"version": "api_version", "private_key_file_path": "private_key_file"}
#: official extras with no use here: simple-salesforce's client name in SOAP ``CallOptions``.
IGNORED = ("client_id",)


def official_login_url(domain: str) -> str:
    """simple-salesforce's ``domain`` -> a login URL: ``login``/``test``, ``acme.my`` ->
    ``https://acme.my.salesforce.com``; a URL or a ``*.salesforce.com`` host is taken as is."""
    value = domain.strip()
    if value.lower() in ("login", "test") or "://" in value or value.lower().endswith(".salesforce.com"):
        return normalize_url(value, "domain")
    return normalize_url(f"https://{value}.salesforce.com", "domain")


def _one(extras: Mapping[str, Any], ours: str, theirs: str, convert: Callable[[Any], Any] = str) -> Any:
    """The value of ``ours`` or ``theirs``; both given and different is an error naming both."""
    mine, other = extras.get(ours), extras.get(theirs)
    if _blank(other):
        return mine
    if not _blank(mine) and convert(mine) != convert(other):
        raise SalesforceConfigError(
            f"extras {ours!r} and {theirs!r} (the official provider's name) differ: give only one"
        )
    return other


def _infer_auth_type(has: Callable[[str], bool], login_url: str) -> str:
    """simple-salesforce's order of choice, but with a Connected App's key and secret the password
    goes through OAuth (token appended) rather than SOAP ``login()``, which Salesforce retires."""
    user_password = has("username") and has("password")
    oauth_app = has("consumer_key") and has("consumer_secret")
    if user_password and has("security_token"):
        return "password" if oauth_app else "soap_login"
    if has("session_id") and has("instance_url"):
        return "session"
    if user_password and has("organization_id"):
        return "soap_login"
    if user_password and oauth_app:
        return "password"
    if has("username") and has("consumer_key") and (has("private_key") or has("private_key_file")):
        return "jwt"
    if oauth_app:
        if login_url in (PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL):
            raise SalesforceConfigError(
                "consumer_key and consumer_secret without a username mean the client credentials flow, "
                "which needs your My Domain: set extra 'domain' (e.g. 'acme.my') or the host"
            )
        return "client_credentials"
    if user_password:
        return "soap_login"  # IP-allowlisted user: no token needed
    raise SalesforceConfigError(
        "cannot tell the auth flow of this 'salesforce' connection: give login, password and "
        "security_token; or consumer_key with private_key(_file_path) and login; or consumer_key and "
        "consumer_secret; or session_id with instance_url; or set extra 'auth_type'"
    )


def official_extras(extras: Mapping[str, Any], host: str | None, login: str | None,
                    password: str | None) -> tuple[dict[str, Any], str | None]:
    """A ``salesforce`` connection's extras (prefix already stripped) in our names, and its host.

    :param extras: the connection's extras without the ``extra__salesforce__`` prefix.
    :param host: the connection's host (the official form hides it; ``domain`` says the same).
    :param login: the connection's login (username).
    :param password: the connection's password.
    :return: ``(extras, host)`` for :meth:`SalesforceConnectionConfig.from_connection`, with
        ``auth_type`` set unless the extras already name one.
    """
    mapped = {k: v for k, v in extras.items() if k not in RENAMED and k not in IGNORED
              and k not in ("domain", "instance")}
    for theirs, ours in RENAMED.items():
        value = _one(extras, ours, theirs)
        if not _blank(value):
            mapped[ours] = value
    domain, instance = extras.get("domain"), extras.get("instance")
    if not _blank(domain):
        from_domain = official_login_url(str(domain))
        if not _blank(host) and normalize_url(str(host), "host") != from_domain:
            raise SalesforceConfigError(
                f"host {host!r} and extra 'domain' {domain!r} name different login URLs: give only one"
            )
        host = from_domain
    if not _blank(instance):
        instance = str(instance).strip()
        mapped["instance_url"] = _one(
            {"instance_url": mapped.get("instance_url"),
             "instance": instance if "://" in instance else f"https://{instance}"},
            "instance_url", "instance", convert=lambda url: normalize_url(str(url), "instance_url"),
        )
    if _blank(mapped.get("auth_type")):
        given = {**mapped, "username": login, "password": password}
        login_url = normalize_url(str(host), "host") if not _blank(host) else PRODUCTION_LOGIN_URL
        mapped["auth_type"] = _infer_auth_type(lambda name: not _blank(given.get(name)), login_url)
    return mapped, host
