"""Dashboard logins: argon2 password hashes, who is looking (Viewer), and CSRF tokens.

Sessions are kept on the server (bot.web.web_sessions; the cookie holds a random token) and throttling lives in
bot.web.login_guard.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.tickets.access import Actor, may_see_tier

_hasher = PasswordHasher()

SESSION_COOKIE = "tierdesk_session"
LOGIN_CSRF_COOKIE = "tierdesk_login_csrf"


def hash_password(password: str) -> str:
    """An argon2id hash for Agent.password_hash (`tierdesk agents passwd` stores what this returns)."""
    if not password or len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if `password` matches; never raises (an empty or malformed hash simply does not match)."""
    if not password_hash or not password:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError, ValueError):
        return False


@dataclass(frozen=True)
class Viewer:
    """Who is looking at the dashboard. What they may see and do is the ticket core's rule for `actor`."""

    agent_id: int
    name: str
    role: str
    tiers: tuple[str, ...]
    csrf: str
    queues: tuple[str, ...] = ()

    @property
    def actor(self) -> Actor:
        """The logged-in agent as the ticket core knows them (roles and visibility live there)."""
        return Actor("agent", self.agent_id, self.role, self.name, self.tiers, self.queues)

    @property
    def is_supervisor(self) -> bool:
        return self.actor.is_supervisor

    @property
    def scope_tiers(self) -> tuple[str, ...]:
        """Tiers this viewer is limited to in SQL filters (customers, contacts); empty means everything."""
        return () if self.is_supervisor else self.tiers

    def may_see_tier(self, tier: str | None) -> bool:
        return may_see_tier(self.actor, tier)


class SessionSigner:
    """Signs the login form's CSRF cookie (before login there is no server-side session to hold the token).
    Sessions themselves live on the server: bot.web.web_sessions."""

    def __init__(self, secret: str) -> None:
        self._login = URLSafeTimedSerializer(secret, salt="tierdesk-login-csrf")

    def login_csrf(self) -> tuple[str, str]:
        """A token for the login form and the signed cookie that vouches for it (double submit)."""
        token = secrets.token_urlsafe(24)
        return token, self._login.dumps(token)

    def login_csrf_ok(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        try:
            expected = self._login.loads(cookie, max_age=3600)
        except BadSignature:
            return False
        return isinstance(expected, str) and _same(expected, token)


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of any text: compare_digest refuses a str with non-ASCII (a 500 on a form)."""
    return hmac.compare_digest(expected.encode(), str(given).encode("utf-8", "surrogatepass"))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and _same(expected, str(given))
