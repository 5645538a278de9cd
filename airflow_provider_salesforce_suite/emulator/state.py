"""Everything one running emulator holds: the store, configuration, sessions, faults, counters."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import ConnectedAppConfig, EmulatorConfig, UserConfig
from .faults import FaultInjector
from .limits import ApiUsage
from .sessions import Session, SessionRegistry
from .stats import Stats
from .store.seed import ORG_ID, STANDARD_PROFILE_ID

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)


class EmulatorState:
    """The shared state every API sub-package works on.

    :param store: the data store (records, metadata, SOQL).
    :param config: credentials, connected apps, limits (default: the well-known development setup).
    """

    def __init__(self, store: Store, config: EmulatorConfig | None = None) -> None:
        self.store = store
        self.config = config or EmulatorConfig()
        # tokens and identity URLs name the org the seeded data has
        self.org_id = ORG_ID
        self.sessions = SessionRegistry(self.config.session_lifetime_seconds, self.org_id)
        self.faults = FaultInjector()
        self.stats = Stats()
        self.api_usage = ApiUsage(self.config.daily_api_limit)
        #: Called after a data reset, for API state kept outside the store (Bulk jobs).
        self.reset_hooks: list[Callable[[], None]] = []
        self.provision_users()

    # -- users and apps ---------------------------------------------------------------------

    def provision_users(self) -> dict[str, str]:
        """Make sure every configured user has a ``User`` record in the store.

        :returns: lower-cased username -> ``User`` id.
        """
        ids: dict[str, str] = {}
        for user in self.config.users:
            record = self.store.find_user(user.username)
            if record is None:
                try:
                    user_id = self.store.create("User", _user_values(self.store, user))
                except Exception:  # a schema without User, or stricter validation: log, go on
                    log.exception("could not create User %s in the store", user.username)
                    continue
            else:
                user_id = record["Id"]
            ids[user.username.lower()] = user_id
        return ids

    def user(self, username: str) -> UserConfig | None:
        """The configured user (credentials) for ``username``.

        :param username: the username.
        """
        return self.config.user(username)

    def user_record(self, username: str) -> dict[str, Any] | None:
        """The store's ``User`` record for ``username``.

        :param username: the username.
        """
        return self.store.find_user(username)

    def connected_app(self, consumer_key: str | None) -> ConnectedAppConfig | None:
        """The connected app with this consumer key.

        :param consumer_key: OAuth ``client_id``.
        """
        return self.config.connected_app(consumer_key) if consumer_key else None

    def app_limit(self, app: ConnectedAppConfig) -> int:
        """The daily API allocation of a connected app.

        :param app: the app.
        """
        return app.daily_api_limit if app.daily_api_limit is not None else self.config.daily_api_limit

    # -- sessions -----------------------------------------------------------------------------

    def session(self, token: str) -> Session | None:
        """The live session for an access token.

        :param token: the access token.
        """
        return self.sessions.get(token)

    # -- admin ----------------------------------------------------------------------------------

    def reset(self, *, data: bool = True, faults: bool = True, stats: bool = True,
              sessions: bool = False, api_usage: bool = True) -> None:
        """Return to a clean state (what ``POST /__emulator__/reset`` and the reset fixture do).

        Sessions survive by default so a client's cached token stays valid across tests.

        :param data: wipe the store's records (users are re-provisioned).
        :param faults: remove every fault rule.
        :param stats: zero the request counters.
        :param sessions: forget every access and refresh token.
        :param api_usage: zero the daily API counters.
        """
        if data:
            self.store.reset()
            self.sessions.rebind_users(self.provision_users())
            for hook in self.reset_hooks:
                hook()
        if faults:
            self.faults.clear()
        if stats:
            self.stats.reset()
        if sessions:
            self.sessions.clear()
        if api_usage:
            self.api_usage.reset()


def _user_values(store: Store, user: UserConfig) -> dict[str, Any]:
    local = user.username.split("@", 1)[0]
    values: dict[str, Any] = {
        "Username": user.username,
        "FirstName": user.first_name or None,
        "LastName": user.last_name or local,
        "Email": user.email or user.username,
        "Alias": local[:8],
        "CommunityNickname": local[:40],
        "IsActive": True,
        "TimeZoneSidKey": "America/Los_Angeles",
        "LocaleSidKey": "en_US",
        "EmailEncodingKey": "UTF-8",
        "LanguageLocaleKey": "en_US",
    }
    values["ProfileId"] = STANDARD_PROFILE_ID
    return {k: v for k, v in values.items() if v is not None}
