"""Emulator configuration: well-known development credentials, users, connected apps, limits.

Everything has a default so ``salesforce-suite-emulator`` works with no configuration; a JSON
file (``--config``) adds users and connected apps or changes limits::

    {
      "users": [{"username": "etl@example.com", "password": "secret", "security_token": "TOKEN"}],
      "connected_apps": [{"name": "ETL", "consumer_key": "etl", "consumer_secret": "s3cret",
                          "certificates": ["/path/jwt-cert.pem"], "run_as": "etl@example.com",
                          "daily_api_limit": 1000}],
      "session_lifetime_seconds": 7200,
      "daily_api_limit": 15000,
      "refresh_token_rotation": false,
      "cdc_entities": ["Account", "Invoice__c"],
      "apex_rest": [{"path": "/Accounts/*", "method": "GET", "response": {"ok": true}, "status": 200},
                    {"path": "/Echo", "method": "POST", "echo": true}],
      "desk_oauth_tokens": [{"consumer_key": "ck", "consumer_secret": "cs", "access_token": "at",
                             "access_token_secret": "ats", "user": "admin@emulator.local"}]
    }
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

#: Well-known development credentials (documented in ``--help`` and the README).
DEFAULT_CONSUMER_KEY = "emulator"
DEFAULT_CONSUMER_SECRET = "emulator"
DEFAULT_USERNAME = "admin@emulator.local"
DEFAULT_PASSWORD = "emulator"
DEFAULT_APP_NAME = "Salesforce Suite Emulator"

#: API versions served, oldest to newest (Summer '14 .. Spring '26).
MIN_API_VERSION = 31
MAX_API_VERSION = 66
API_VERSIONS: tuple[str, ...] = tuple(f"{v}.0" for v in range(MIN_API_VERSION, MAX_API_VERSION + 1))

@dataclass
class UserConfig:
    """A user who can log in (the store holds the matching ``User`` record).

    :param username: login name, e.g. ``admin@emulator.local``.
    :param password: password.
    :param security_token: appended to the password by API clients; empty means none needed.
    :param first_name: ``User.FirstName``.
    :param last_name: ``User.LastName``.
    :param email: ``User.Email`` (defaults to the username).
    """

    username: str
    password: str
    security_token: str = ""
    first_name: str = ""
    last_name: str = "User"
    email: str = ""

    def accepts(self, password: str) -> bool:
        """Whether ``password`` is this user's password followed by the security token.

        :param password: the ``password`` form field as the client sent it.
        """
        return password == self.password + self.security_token


@dataclass
class ConnectedAppConfig:
    """A connected app (OAuth client).

    :param name: the app's name (shown in ``per-app-api-usage``).
    :param consumer_key: OAuth ``client_id``.
    :param consumer_secret: OAuth ``client_secret``.
    :param certificates: PEM files (certificates or public keys) trusted for JWT bearer assertions.
    :param run_as: username the client credentials flow runs as (``None`` disables that flow).
    :param daily_api_limit: the app's own daily API allocation (``None``: the org's limit).
    :param scope: the ``scope`` reported in token responses.
    """

    name: str
    consumer_key: str
    consumer_secret: str
    certificates: list[str] = field(default_factory=list)
    run_as: str | None = None
    daily_api_limit: int | None = None
    scope: str = "api refresh_token"


@dataclass
class ApexRestRoute:
    """A canned Apex REST endpoint under ``/services/apexrest`` (the emulator cannot run Apex).

    :param path: the ``@RestResource`` urlMapping, e.g. ``/Accounts/*`` (``*`` matches the rest).
    :param method: HTTP method.
    :param response: the JSON body answered (ignored with ``echo``).
    :param status: HTTP status.
    :param echo: answer the request's JSON body (or ``null``) instead of ``response``.
    """

    path: str
    method: str = "GET"
    response: object = None
    status: int = 200
    echo: bool = False


@dataclass
class DeskOAuthToken:
    """A Desk OAuth 1.0a consumer/token pair the emulator's Desk API accepts.

    :param consumer_key: the API application's key.
    :param consumer_secret: its secret.
    :param access_token: the agent's access token.
    :param access_token_secret: the token's secret.
    :param user: the agent's email the token acts as.
    """

    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str
    user: str = DEFAULT_USERNAME


#: Well-known Desk OAuth 1.0a credentials (documented in ``--help`` and docs/emulator.md).
DEFAULT_DESK_OAUTH = DeskOAuthToken("emulator", "emulator", "emulator-token", "emulator-token-secret")


def _default_users() -> list[UserConfig]:
    return [
        UserConfig(
            username=DEFAULT_USERNAME,
            password=DEFAULT_PASSWORD,
            first_name="Admin",
            last_name="User",
            email=DEFAULT_USERNAME,
        )
    ]


def _default_apps() -> list[ConnectedAppConfig]:
    return [
        ConnectedAppConfig(
            name=DEFAULT_APP_NAME,
            consumer_key=DEFAULT_CONSUMER_KEY,
            consumer_secret=DEFAULT_CONSUMER_SECRET,
            run_as=DEFAULT_USERNAME,
        )
    ]


@dataclass
class EmulatorConfig:
    """Everything configurable about one emulator instance.

    :param users: users who can log in; the well-known admin is always first.
    :param connected_apps: OAuth clients; the well-known ``emulator`` app is always first.
    :param session_lifetime_seconds: how long an access token stays valid (Salesforce's default
        session timeout is 2 hours).
    :param daily_api_limit: the org's ``DailyApiRequests`` limit.
    :param refresh_token_rotation: issue a new refresh token on every refresh and reject the old.
    :param apex_rest: canned Apex REST endpoints (see :class:`ApexRestRoute`).
    :param cdc_entities: objects selected for Change Data Capture (Setup -> Change Data Capture):
        ``/data/ChangeEvents`` and ``/data/<Object>ChangeEvent`` publish only for these. None by
        default, as in a new org; object names (``Account``) or event names (``AccountChangeEvent``).
    :param desk_oauth_tokens: OAuth 1.0a pairs the Desk API accepts (see :class:`DeskOAuthToken`).
    :param pardot_business_unit_ids: Pardot Business Unit ids the Pardot API accepts in the
        ``Pardot-Business-Unit-Id`` header (default ``0Uv000000000001AAA``).
    """

    users: list[UserConfig] = field(default_factory=_default_users)
    connected_apps: list[ConnectedAppConfig] = field(default_factory=_default_apps)
    session_lifetime_seconds: float = 7200.0
    daily_api_limit: int = 15000
    refresh_token_rotation: bool = False
    apex_rest: list[ApexRestRoute] = field(default_factory=list)
    cdc_entities: list[str] = field(default_factory=list)
    desk_oauth_tokens: list[DeskOAuthToken] = field(default_factory=lambda: [DEFAULT_DESK_OAUTH])
    pardot_business_unit_ids: list[str] = field(default_factory=lambda: ["0Uv000000000001AAA"])

    @classmethod
    def from_dict(cls, data: dict) -> EmulatorConfig:
        """A config with the defaults plus what ``data`` (a parsed config file) adds or changes.

        :param data: the parsed JSON config.
        """
        config = cls()
        for user in data.get("users", []):
            config.add_user(UserConfig(**user))
        for app in data.get("connected_apps", []):
            config.add_connected_app(ConnectedAppConfig(**app))
        config.apex_rest = [ApexRestRoute(**route) for route in data.get("apex_rest", [])]
        config.desk_oauth_tokens += [DeskOAuthToken(**token) for token in data.get("desk_oauth_tokens", [])]
        for key in ("session_lifetime_seconds", "daily_api_limit", "refresh_token_rotation", "cdc_entities",
                    "pardot_business_unit_ids"):
            if key in data:
                setattr(config, key, data[key])
        return config

    @classmethod
    def from_file(cls, path: str | Path) -> EmulatorConfig:
        """Read a JSON config file (see the module docstring for its shape).

        :param path: the file.
        """
        return cls.from_dict(json.loads(Path(path).expanduser().read_text(encoding="utf-8")))

    def add_user(self, user: UserConfig) -> None:
        """Add (or replace, by username) a user.

        :param user: the user.
        """
        self.users = [u for u in self.users if u.username.lower() != user.username.lower()]
        self.users.append(user)

    def add_connected_app(self, app: ConnectedAppConfig) -> None:
        """Add (or replace, by consumer key) a connected app.

        :param app: the app.
        """
        self.connected_apps = [a for a in self.connected_apps if a.consumer_key != app.consumer_key]
        self.connected_apps.append(app)

    def user(self, username: str) -> UserConfig | None:
        """The user with this username (case-insensitive, as Salesforce usernames are).

        :param username: the username.
        """
        wanted = username.lower()
        return next((u for u in self.users if u.username.lower() == wanted), None)

    def connected_app(self, consumer_key: str) -> ConnectedAppConfig | None:
        """The connected app with this consumer key.

        :param consumer_key: the OAuth ``client_id``.
        """
        return next((a for a in self.connected_apps if a.consumer_key == consumer_key), None)

    def desk_oauth_token(self, consumer_key: str | None, access_token: str | None) -> DeskOAuthToken | None:
        """The Desk OAuth 1.0a pair with this consumer key and access token.

        :param consumer_key: ``oauth_consumer_key``.
        :param access_token: ``oauth_token``.
        """
        return next((t for t in self.desk_oauth_tokens
                     if t.consumer_key == consumer_key and t.access_token == access_token), None)
