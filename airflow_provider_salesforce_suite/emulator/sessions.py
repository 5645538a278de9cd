"""Access tokens (sessions) and refresh tokens, as the OAuth endpoints issue them."""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass

_TOKEN_CHARS = string.ascii_letters + string.digits + "._"


def _random(length: int, alphabet: str = _TOKEN_CHARS) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_access_token(org_id: str) -> str:
    """An opaque token shaped like Salesforce's: ``<15-char org id>!AQ<random>``.

    Clients sometimes parse the org id prefix out of the token, so keep that shape.

    :param org_id: the org's id.
    """
    return f"{org_id[:15]}!AQ{_random(4, string.ascii_letters + string.digits)}{_random(92)}"


def new_refresh_token() -> str:
    """An opaque refresh token shaped like Salesforce's (``5Aep861...``)."""
    return "5Aep861" + _random(80, string.ascii_letters + string.digits + "_.")


@dataclass
class Session:
    """One access token and who it belongs to.

    :param token: the access token.
    :param user_id: the ``User`` record id.
    :param username: the user's username.
    :param consumer_key: the connected app the token was issued to (``None`` for none).
    :param issued_at: epoch seconds.
    :param expires_at: epoch seconds after which the token is rejected.
    :param grant_type: the grant that produced it.
    """

    token: str
    user_id: str
    username: str
    consumer_key: str | None
    issued_at: float
    expires_at: float
    grant_type: str

    def expired(self, now: float | None = None) -> bool:
        """Whether the session is past its lifetime.

        :param now: epoch seconds (default: now).
        """
        return (time.time() if now is None else now) >= self.expires_at


@dataclass
class RefreshToken:
    """A refresh token: which user and connected app it refreshes sessions for.

    :param token: the refresh token.
    :param username: the user.
    :param consumer_key: the connected app it was issued to.
    """

    token: str
    username: str
    consumer_key: str


class SessionRegistry:
    """Thread-safe registry of live sessions and refresh tokens.

    The server thread issues and checks tokens while tests (another thread) expire them.

    :param lifetime_seconds: how long a new session lives.
    :param org_id: the org id access tokens are prefixed with.
    """

    def __init__(self, lifetime_seconds: float, org_id: str) -> None:
        self.lifetime_seconds = lifetime_seconds
        self.org_id = org_id
        self._sessions: dict[str, Session] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._lock = threading.Lock()

    def issue(self, *, user_id: str, username: str, consumer_key: str | None, grant_type: str) -> Session:
        """Create a session.

        :param user_id: the ``User`` id.
        :param username: the username.
        :param consumer_key: the connected app's consumer key.
        :param grant_type: the OAuth grant type.
        """
        now = time.time()
        session = Session(
            token=new_access_token(self.org_id),
            user_id=user_id,
            username=username,
            consumer_key=consumer_key,
            issued_at=now,
            expires_at=now + self.lifetime_seconds,
            grant_type=grant_type,
        )
        with self._lock:
            self._sessions[session.token] = session
        return session

    def get(self, token: str) -> Session | None:
        """The live session for ``token`` (``None`` if unknown, revoked or expired).

        :param token: the access token.
        """
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expired():
                # Expired sessions are forgotten; Salesforce answers them like unknown ones.
                del self._sessions[token]
                return None
            return session

    def revoke(self, token: str) -> bool:
        """Revoke an access or refresh token; revoking a refresh token also revokes the
        sessions of that user and app, as Salesforce does.

        :param token: an access or refresh token.
        :returns: whether the token was known.
        """
        with self._lock:
            if self._sessions.pop(token, None) is not None:
                return True
            refresh = self._refresh.pop(token, None)
            if refresh is None:
                return False
            for key, session in list(self._sessions.items()):
                if session.username == refresh.username and session.consumer_key == refresh.consumer_key:
                    del self._sessions[key]
            return True

    def expire_all(self) -> int:
        """Make every session expired now (refresh tokens stay valid).

        :returns: how many sessions were live.
        """
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count

    def issue_refresh_token(self, username: str, consumer_key: str) -> RefreshToken:
        """Create a refresh token.

        :param username: the user.
        :param consumer_key: the connected app.
        """
        refresh = RefreshToken(new_refresh_token(), username, consumer_key)
        with self._lock:
            self._refresh[refresh.token] = refresh
        return refresh

    def refresh_token(self, token: str) -> RefreshToken | None:
        """The refresh token record for ``token``.

        :param token: the refresh token.
        """
        with self._lock:
            return self._refresh.get(token)

    def rotate(self, token: str) -> RefreshToken | None:
        """Replace a refresh token by a new one (the old one is then rejected).

        :param token: the refresh token being used.
        :returns: the new refresh token, or ``None`` if ``token`` is unknown.
        """
        with self._lock:
            old = self._refresh.pop(token, None)
            if old is None:
                return None
            new = RefreshToken(new_refresh_token(), old.username, old.consumer_key)
            self._refresh[new.token] = new
            return new

    def rebind_users(self, user_ids: dict[str, str]) -> None:
        """Point sessions at new ``User`` ids after a data reset re-created the users.

        :param user_ids: lower-cased username -> new user id.
        """
        with self._lock:
            for session in self._sessions.values():
                session.user_id = user_ids.get(session.username.lower(), session.user_id)

    def clear(self) -> None:
        """Forget every session and refresh token."""
        with self._lock:
            self._sessions.clear()
            self._refresh.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
