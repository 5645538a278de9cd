"""Parse and validate an Airflow Connection once, before any network call.

``salesforce_suite`` -> :class:`SalesforceConnectionConfig`; ``salesforce_pardot`` ->
:class:`PardotConnectionConfig` (the same Salesforce OAuth part plus the Pardot settings);
``salesforce_desk`` -> :class:`DeskConnectionConfig`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from airflow_provider_salesforce_suite.core.errors import SalesforceConfigError
from airflow_provider_salesforce_suite.core.secrets import mask

DEFAULT_API_VERSION = "64.0"
CONN_TYPE = "salesforce_suite"
#: The official apache-airflow-providers-salesforce connection type, read through :mod:`.compat`.
OFFICIAL_CONN_TYPE = "salesforce"
EXTRA_PREFIX = f"extra__{CONN_TYPE}__"

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
#: Salesforce's global Pub/Sub API (gRPC) endpoint, ``host:port``.
DEFAULT_PUBSUB_ENDPOINT = "api.pubsub.salesforce.com:7443"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
_HOST_ALIASES = {"login": PRODUCTION_LOGIN_URL, "prod": PRODUCTION_LOGIN_URL, "test": SANDBOX_LOGIN_URL,
                 "sandbox": SANDBOX_LOGIN_URL}

AUTH_TYPES = ("password", "jwt", "client_credentials", "refresh_token", "session", "soap_login")
_API_VERSION_RE = re.compile(r"^\d{1,3}\.\d$")
_ORG_ID_RE = re.compile(r"^00D[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")
_SECRET_FIELDS = ("password", "security_token", "consumer_secret", "private_key", "refresh_token", "session_id")
# The user a secret is paired with in a Basic Authorization header (so its base64 form is masked too).
_BASIC_AUTH_USER = {"password": "username", "consumer_secret": "consumer_key"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _extras(conn: Any, conn_type: str = CONN_TYPE) -> dict[str, Any]:
    """Connection extras with the connection type's UI prefix (``extra__<conn_type>__``) stripped;
    a non-blank plain key wins over a prefixed one."""
    prefix = f"extra__{conn_type}__"
    raw = getattr(conn, "extra_dejson", None) or {}
    merged: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith(prefix) and not _blank(value):
            merged.setdefault(key[len(prefix):], value)
    for key, value in raw.items():
        if not key.startswith(prefix) and not _blank(value):
            merged[key] = value
    return merged


def normalize_url(value: str, field_name: str) -> str:
    """``login``/``test`` aliases, a bare domain, or an https URL -> ``https://host[:port]``."""
    value = value.strip()
    if value.lower() in _HOST_ALIASES:
        return _HOST_ALIASES[value.lower()]
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if not parts.hostname:
        raise SalesforceConfigError(f"{field_name} {value!r} is not a URL")
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise SalesforceConfigError(f"{field_name} must be an https URL, got scheme {parts.scheme!r}")
    return f"{parts.scheme}://{parts.netloc}"


def connection_host(conn: Any) -> str | None:
    """The connection's host with its port field folded in: URI-form connections
    (``salesforce-suite://user:pw@host:8555``) carry the port separately."""
    host, port = getattr(conn, "host", None), getattr(conn, "port", None)
    if _blank(host) or not port:
        return host
    host = str(host).strip().rstrip("/")
    if host.lower() in _HOST_ALIASES or urlsplit(host if "://" in host else "https://" + host).port is not None:
        return host
    return f"{host}:{port}"


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
        return False
    raise SalesforceConfigError(f"{name} must be a boolean, got {value!r}")


def _as_number(value: Any, name: str, *, integer: bool = False, minimum: float = 0.0,
               exclusive: bool = True, maximum: float | None = None) -> Any:
    try:
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise SalesforceConfigError(f"{name} must be {kind}, got {value!r}") from None
    too_small = number <= minimum if exclusive else number < minimum
    if too_small or (maximum is not None and number > maximum):
        bound = f"> {minimum}" if exclusive else f">= {minimum}"
        if maximum is not None:
            bound += f" and <= {maximum}"
        raise SalesforceConfigError(f"{name} must be {bound}, got {value!r}")
    return number


def _site_url(value: str, field_name: str, aliases: Mapping[str, str]) -> str:
    """Like :func:`normalize_url`, but with this field's own aliases instead of Salesforce's login ones."""
    key = value.strip().lower()
    if key in aliases:
        return aliases[key]
    if key in _HOST_ALIASES:
        raise SalesforceConfigError(f"{field_name} {value!r} is a Salesforce login alias, not a URL for this field")
    return normalize_url(value, field_name)


def _as_ca_bundle(value: Any) -> str | None:
    if _blank(value):
        return None
    path = os.path.expanduser(str(value))
    if not os.path.isfile(path):
        raise SalesforceConfigError(f"ca_bundle {value!r} is not a file")
    return path


def _as_endpoint(value: Any, name: str, default: str) -> str:
    """A gRPC ``host:port`` (a scheme such as ``https://`` is dropped, as users paste URLs)."""
    if _blank(value):
        return default
    text = str(value).strip()
    for scheme in ("https://", "http://", "dns:///"):
        text = text.removeprefix(scheme)
    text = text.rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not host or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SalesforceConfigError(f"{name} must be host:port like {default!r}, got {value!r}")
    return text


def _requests_verify(verify: bool, ca_bundle: str | None) -> bool | str:
    return ca_bundle if (verify and ca_bundle) else verify


def _as_proxies(value: Any) -> dict[str, str] | None:
    if _blank(value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SalesforceConfigError("proxies must be a JSON object like {\"https\": \"http://proxy:3128\"}") from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SalesforceConfigError("proxies must map URL schemes to proxy URLs (strings)")
    return dict(value)


#: Longest wait a 429's Retry-After / X-Rate-Limit-Reset may ask for: covers Desk's 60-second window.
DEFAULT_RATE_LIMIT_MAX_WAIT = 90.0


def _transport_settings(extras: Mapping[str, Any]) -> dict[str, Any]:
    """Proxies, TLS, timeouts and retry bounds: the same extras for every connection type."""
    return {
        "proxies": _as_proxies(extras.get("proxies")),
        "verify": _as_bool(extras.get("verify", True), "verify"),
        "ca_bundle": _as_ca_bundle(extras.get("ca_bundle")),
        "timeout": _as_number(extras.get("timeout", 120), "timeout"),
        "connect_timeout": _as_number(extras.get("connect_timeout", 10), "connect_timeout"),
        "max_retries": _as_number(extras.get("max_retries", 4), "max_retries", integer=True, exclusive=False),
        "retry_max_seconds": _as_number(extras.get("retry_max_seconds", 60), "retry_max_seconds"),
        "rate_limit_max_wait": _as_number(extras.get("rate_limit_max_wait", DEFAULT_RATE_LIMIT_MAX_WAIT),
                                          "rate_limit_max_wait", exclusive=False),
    }


def _masked_repr(obj: Any, secret_fields: tuple[str, ...]) -> str:
    """``Class(field=value, ...)`` with secrets shown as ``'***'`` and proxy credentials removed."""
    shown = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in secret_fields:
            if value is not None:
                shown.append(f"{f.name}='***'")
        elif f.name == "proxies" and value:
            # proxy URLs may embed credentials (http://user:pass@proxy)
            safe = {k: re.sub(r"//[^@/]*@", "//***@", v) for k, v in value.items()}
            shown.append(f"proxies={safe!r}")
        elif value is not None:
            shown.append(f"{f.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(shown)})"


@dataclass(frozen=True, repr=False)
class SalesforceConnectionConfig:
    """Everything needed to authenticate to and talk with one Salesforce org.

    Build it with :meth:`from_connection`; the constructor validates too.

    :param conn_id: Airflow connection id (part of the token cache key).
    :param auth_type: one of :data:`AUTH_TYPES`.
    :param login_url: OAuth / SOAP login endpoint base (``https://login.salesforce.com``, My Domain ...).
    :param username: Salesforce username (connection login).
    :param password: Salesforce password (connection password).
    :param security_token: appended to the password for password and SOAP login flows.
    :param consumer_key: connected app client id.
    :param consumer_secret: connected app client secret.
    :param private_key: PEM private key for the JWT bearer flow (inline, or read from ``private_key_file``).
    :param private_key_file: path the private key was read from.
    :param refresh_token: OAuth refresh token for the refresh token flow.
    :param session_id: existing session id / access token for the ``session`` flow.
    :param organization_id: ``soap_login``: the org id sent in ``LoginScopeHeader`` (self-service
        and IP-allowlisted users of the official provider's "IP filtering" login).
    :param instance_url: instance URL for the ``session`` flow (others take it from the token response).
    :param api_version: REST API version like ``"64.0"``.
    :param proxies: requests-style ``{"https": "http://proxy:3128"}``.
    :param verify: verify TLS certificates.
    :param ca_bundle: CA bundle path used for verification.
    :param timeout: read timeout in seconds.
    :param connect_timeout: connect timeout in seconds.
    :param limit_warning_threshold: share of the daily API limit above which a warning is logged.
    :param max_retries: retries of a transient failure after the first attempt.
    :param retry_max_seconds: upper bound on the total time spent retrying one call.
    :param rate_limit_max_wait: longest wait a 429 may ask for (``Retry-After`` / ``X-Rate-Limit-Reset``);
        such waits do not count against ``retry_max_seconds``, and a longer one fails at once.
    :param pubsub_endpoint: the Pub/Sub API's gRPC endpoint, ``host:port`` (TLS through ``ca_bundle``).
    """

    conn_id: str
    auth_type: str = "password"
    login_url: str = PRODUCTION_LOGIN_URL
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    consumer_key: str | None = None
    consumer_secret: str | None = None
    private_key: str | None = None
    private_key_file: str | None = None
    refresh_token: str | None = None
    session_id: str | None = None
    organization_id: str | None = None
    instance_url: str | None = None
    api_version: str = DEFAULT_API_VERSION
    proxies: dict[str, str] | None = field(default=None, hash=False)
    verify: bool = True
    ca_bundle: str | None = None
    timeout: float = 120.0
    connect_timeout: float = 10.0
    limit_warning_threshold: float = 0.8
    max_retries: int = 4
    retry_max_seconds: float = 60.0
    rate_limit_max_wait: float = DEFAULT_RATE_LIMIT_MAX_WAIT
    pubsub_endpoint: str = DEFAULT_PUBSUB_ENDPOINT

    def __post_init__(self) -> None:
        self._validate()
        for name in _SECRET_FIELDS:
            user = _BASIC_AUTH_USER.get(name)
            mask(getattr(self, name), None, username=getattr(self, user) if user else None)

    @classmethod
    def from_connection(cls, conn: Any, *, api_version: str | None = None,
                        conn_type: str = CONN_TYPE) -> SalesforceConnectionConfig:
        """Build the config from an Airflow ``Connection``.

        :param conn: the Airflow connection (``host``, ``login``, ``password``, ``extra``).
        :param api_version: overrides the connection's ``api_version`` extra.
        :param conn_type: connection type whose UI-prefixed extras are read (``salesforce_pardot`` ...).
            A connection of the official provider's type ``salesforce`` is read with its own extra
            names (:mod:`.compat`).
        """
        host = connection_host(conn)
        if conn_type == CONN_TYPE and getattr(conn, "conn_type", None) == OFFICIAL_CONN_TYPE:
            from airflow_provider_salesforce_suite.core.compat import official_extras  # imports this module

            extras, host = official_extras(_extras(conn, OFFICIAL_CONN_TYPE), host,
                                           getattr(conn, "login", None), getattr(conn, "password", None))
        else:
            extras = _extras(conn, conn_type)
        auth_type = str(extras.get("auth_type", "password")).strip().lower()
        if auth_type not in AUTH_TYPES:
            raise SalesforceConfigError(
                f"unknown auth_type {auth_type!r}; valid auth types: {', '.join(AUTH_TYPES)}"
            )
        instance_url = extras.get("instance_url")
        if auth_type == "session" and _blank(instance_url) and not _blank(host):
            instance_url = host
        login_url = normalize_url(host, "host") if not _blank(host) else PRODUCTION_LOGIN_URL

        private_key = extras.get("private_key")
        private_key_file = extras.get("private_key_file")
        if not _blank(private_key) and not _blank(private_key_file):
            raise SalesforceConfigError(
                "extras 'private_key' and 'private_key_file' are contradictory: give only one"
            )
        if not _blank(private_key_file):
            path = os.path.expanduser(str(private_key_file))
            try:
                with open(path, encoding="utf-8") as fh:
                    private_key = fh.read()
            except OSError as exc:
                raise SalesforceConfigError(f"private_key_file {path!r} cannot be read: {exc.strerror}") from None
        elif isinstance(private_key, str):
            private_key = private_key.replace("\\n", "\n")  # PEMs pasted into one-line UI fields

        def opt(name: str) -> str | None:
            value = extras.get(name)
            return None if _blank(value) else str(value)

        password = getattr(conn, "password", None)
        return cls(
            conn_id=str(getattr(conn, "conn_id", None) or ""),
            auth_type=auth_type,
            login_url=login_url,
            username=None if _blank(getattr(conn, "login", None)) else conn.login,
            password=None if _blank(password) else password,
            security_token=opt("security_token"),
            consumer_key=opt("consumer_key"),
            consumer_secret=opt("consumer_secret"),
            private_key=None if _blank(private_key) else private_key,
            private_key_file=None if _blank(private_key_file) else str(private_key_file),
            refresh_token=opt("refresh_token"),
            session_id=opt("session_id"),
            organization_id=opt("organization_id"),
            instance_url=None if _blank(instance_url) else normalize_url(str(instance_url), "instance_url"),
            api_version=str(api_version or extras.get("api_version") or DEFAULT_API_VERSION).strip(),
            limit_warning_threshold=_as_number(
                extras.get("limit_warning_threshold", 0.8), "limit_warning_threshold", maximum=1.0
            ),
            pubsub_endpoint=_as_endpoint(extras.get("pubsub_endpoint"), "pubsub_endpoint", DEFAULT_PUBSUB_ENDPOINT),
            **_transport_settings(extras),
        )

    def _validate(self) -> None:
        t = self.auth_type
        if t not in AUTH_TYPES:
            raise SalesforceConfigError(f"unknown auth_type {t!r}; valid auth types: {', '.join(AUTH_TYPES)}")
        if not _API_VERSION_RE.match(self.api_version or ""):
            raise SalesforceConfigError(f"api_version must look like \"64.0\", got {self.api_version!r}")
        if self.organization_id is not None and not _ORG_ID_RE.match(self.organization_id):
            raise SalesforceConfigError(
                f"organization_id must be an org id (00D..., 15 or 18 characters), got {self.organization_id!r}"
            )

        def need(*names: str, hint: str = "") -> None:
            for name in names:
                if _blank(getattr(self, name)):
                    label = {"username": "username (connection login)",
                             "password": "password (connection password)"}.get(name, name)
                    raise SalesforceConfigError(f"auth_type {t!r} needs {label}{hint}")

        if t == "password":
            need("consumer_key", "consumer_secret", "username", "password")
        elif t == "jwt":
            need("consumer_key", "username")
            if _blank(self.private_key):
                raise SalesforceConfigError(
                    "auth_type 'jwt' needs a private key (extra 'private_key' or 'private_key_file')"
                )
            if "PRIVATE KEY-----" not in self.private_key:
                raise SalesforceConfigError("private_key must be a PEM encoded private key")
        elif t == "client_credentials":
            need("consumer_key", "consumer_secret")
        elif t == "refresh_token":
            need("consumer_key", "refresh_token")
        elif t == "session":
            if _blank(self.session_id) or _blank(self.instance_url):
                raise SalesforceConfigError("auth_type 'session' needs session_id and instance_url (or host)")
        elif t == "soap_login":
            need("username", "password")

    @property
    def requests_verify(self) -> bool | str:
        """``verify`` value for requests: the CA bundle path, or the boolean."""
        return _requests_verify(self.verify, self.ca_bundle)

    def fingerprint(self) -> str:
        """Stable digest of every field (secrets included, never shown) for cache keys."""
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return _masked_repr(self, _SECRET_FIELDS)

    __str__ = __repr__


# -- salesforce_pardot ------------------------------------------------------------------------------
PARDOT_CONN_TYPE = "salesforce_pardot"
PARDOT_HOST = "https://pi.pardot.com"
PARDOT_DEMO_HOST = "https://pi.demo.pardot.com"
PARDOT_API_VERSIONS = (5, 4)
_PARDOT_HOST_ALIASES = {"demo": PARDOT_DEMO_HOST, "production": PARDOT_HOST}
# Business units are Salesforce ids with key prefix 0Uv, in 15 (case-sensitive) or 18 char form.
_BUSINESS_UNIT_RE = re.compile(r"^0Uv[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")


@dataclass(frozen=True)
class PardotConnectionConfig:
    """A ``salesforce_pardot`` connection: Salesforce OAuth (for the token) plus the Pardot settings.

    :param salesforce: the Salesforce part, parsed with the ``salesforce_suite`` rules from the same connection.
    :param business_unit_id: Pardot Business Unit id (``0Uv...``, 15 or 18 characters), sent as
        ``Pardot-Business-Unit-Id`` on every Pardot request.
    :param pardot_host: Pardot API base URL (``https://pi.pardot.com``, ``https://pi.demo.pardot.com`` ...).
    :param pardot_api_version: Pardot API version, 5 or 4.
    """

    salesforce: SalesforceConnectionConfig
    business_unit_id: str
    pardot_host: str = PARDOT_HOST
    pardot_api_version: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.business_unit_id, str) or not _BUSINESS_UNIT_RE.match(self.business_unit_id):
            raise SalesforceConfigError(
                "business_unit_id must be a Pardot Business Unit id: 15 or 18 characters starting with "
                f"'0Uv', got {self.business_unit_id!r}"
            )
        if self.pardot_api_version not in PARDOT_API_VERSIONS:
            raise SalesforceConfigError(f"pardot_api_version must be 5 or 4, got {self.pardot_api_version!r}")

    @classmethod
    def from_connection(cls, conn: Any, *, api_version: str | None = None) -> PardotConnectionConfig:
        """Build the config from an Airflow ``Connection`` of type ``salesforce_pardot``.

        :param conn: the Airflow connection (host = Salesforce login URL, login, password, extra).
        :param api_version: overrides the Salesforce ``api_version`` extra.
        """
        extras = _extras(conn, PARDOT_CONN_TYPE)
        business_unit_id = extras.get("business_unit_id")
        if _blank(business_unit_id):
            raise SalesforceConfigError("a salesforce_pardot connection needs business_unit_id (0Uv...)")
        host = extras.get("pardot_host")
        version = str(extras.get("pardot_api_version", 5)).strip().lower().removeprefix("v")
        if version not in {"4", "5"}:
            raise SalesforceConfigError(f"pardot_api_version must be 5 or 4, got {extras['pardot_api_version']!r}")
        return cls(
            salesforce=SalesforceConnectionConfig.from_connection(
                conn, api_version=api_version, conn_type=PARDOT_CONN_TYPE
            ),
            business_unit_id=str(business_unit_id).strip(),
            pardot_host=PARDOT_HOST if _blank(host) else _site_url(str(host), "pardot_host", _PARDOT_HOST_ALIASES),
            pardot_api_version=int(version),
        )

    @property
    def conn_id(self) -> str:
        return self.salesforce.conn_id


# -- salesforce_desk --------------------------------------------------------------------------------
DESK_CONN_TYPE = "salesforce_desk"
DESK_AUTH_TYPES = ("basic", "oauth1")
_DESK_SECRET_FIELDS = ("password", "consumer_secret", "access_token", "access_token_secret")


@dataclass(frozen=True, repr=False)
class DeskConnectionConfig:
    """A ``salesforce_desk`` connection: the Desk site and its Basic or OAuth 1.0a credentials.

    :param conn_id: Airflow connection id.
    :param site_url: ``https://yoursite.desk.com`` (connection host).
    :param auth_type: ``basic`` (email + password) or ``oauth1`` (OAuth 1.0a).
    :param email: agent email for Basic auth (connection login).
    :param password: agent password for Basic auth (connection password).
    :param consumer_key: OAuth 1.0a consumer key.
    :param consumer_secret: OAuth 1.0a consumer secret.
    :param access_token: OAuth 1.0a token.
    :param access_token_secret: OAuth 1.0a token secret.
    :param proxies: requests-style ``{"https": "http://proxy:3128"}``.
    :param verify: verify TLS certificates.
    :param ca_bundle: CA bundle path used for verification.
    :param timeout: read timeout in seconds.
    :param connect_timeout: connect timeout in seconds.
    :param max_retries: retries of a transient failure after the first attempt.
    :param retry_max_seconds: upper bound on the total time spent retrying one call.
    :param rate_limit_max_wait: longest wait a 429 may ask for (``Retry-After`` / ``X-Rate-Limit-Reset``);
        such waits do not count against ``retry_max_seconds``, and a longer one fails at once.
    """

    conn_id: str
    site_url: str
    auth_type: str = "basic"
    email: str | None = None
    password: str | None = None
    consumer_key: str | None = None
    consumer_secret: str | None = None
    access_token: str | None = None
    access_token_secret: str | None = None
    proxies: dict[str, str] | None = field(default=None, hash=False)
    verify: bool = True
    ca_bundle: str | None = None
    timeout: float = 120.0
    connect_timeout: float = 10.0
    max_retries: int = 4
    retry_max_seconds: float = 60.0
    rate_limit_max_wait: float = DEFAULT_RATE_LIMIT_MAX_WAIT

    def __post_init__(self) -> None:
        if self.auth_type not in DESK_AUTH_TYPES:
            raise SalesforceConfigError(
                f"unknown Desk auth_type {self.auth_type!r}; valid auth types: {', '.join(DESK_AUTH_TYPES)}"
            )
        if self.auth_type == "basic":
            required = {"email": "email (connection login)", "password": "password (connection password)"}
        else:
            required = {name: name for name in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")}
        missing = [label for name, label in required.items() if _blank(getattr(self, name))]
        if missing:
            raise SalesforceConfigError(f"Desk auth_type {self.auth_type!r} needs {', '.join(missing)}")
        for name in _DESK_SECRET_FIELDS:
            mask(getattr(self, name), None, username=self.email if name == "password" else None)

    @classmethod
    def from_connection(cls, conn: Any) -> DeskConnectionConfig:
        """Build the config from an Airflow ``Connection`` of type ``salesforce_desk``.

        :param conn: the Airflow connection (host = site URL, login = email, password, extra).
        """
        extras = _extras(conn, DESK_CONN_TYPE)
        host = connection_host(conn)
        if _blank(host):
            raise SalesforceConfigError("a salesforce_desk connection needs the site URL as host (https://yoursite.desk.com)")

        def opt(value: Any) -> str | None:
            return None if _blank(value) else str(value)

        return cls(
            conn_id=str(getattr(conn, "conn_id", None) or ""),
            site_url=_site_url(str(host), "host", {}),
            auth_type=str(extras.get("auth_type", "basic")).strip().lower(),
            email=opt(getattr(conn, "login", None)),
            password=opt(getattr(conn, "password", None)),
            consumer_key=opt(extras.get("consumer_key")),
            consumer_secret=opt(extras.get("consumer_secret")),
            access_token=opt(extras.get("access_token")),
            access_token_secret=opt(extras.get("access_token_secret")),
            **_transport_settings(extras),
        )

    @property
    def requests_verify(self) -> bool | str:
        """``verify`` value for requests: the CA bundle path, or the boolean."""
        return _requests_verify(self.verify, self.ca_bundle)

    def __repr__(self) -> str:
        return _masked_repr(self, _DESK_SECRET_FIELDS)

    __str__ = __repr__
