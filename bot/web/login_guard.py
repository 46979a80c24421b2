"""Login throttling and the equal-work password check of the dashboard.

Failed logins are counted per (client, account) in the `login_throttles` table, so every web process shares
them. Each failure makes the next try *from that client for that account* wait longer (0, 1, 2, 4, 8 … seconds,
at most 15 minutes); nothing ever locks the account, so the real user on another client still gets in.

An attempt is counted before the password is checked (a compare-and-set on the row), so a burst of parallel
guesses cannot all slip through one open slot; a full login deletes the row. Unknown emails get the same
row, the same argon2 work (a dummy hash) and the same answer as known ones, so neither the time nor the words
tell which accounts exist.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.auth import hash_password, verify_password
from crm_store.models import now as utcnow
from crm_store.repositories import login_throttles as throttles_repo
from crm_store.trust import LoginThrottle

MAX_DELAY_S = 15 * 60
WRONG_LOGIN = "Wrong email or password."
"""The one answer to a wrong password, an unknown email and an account without a password."""


def delay_after(failures: int) -> int:
    """Seconds the next try waits after `failures` failed ones: 0, 1, 2, 4, 8 … capped at 15 minutes."""
    if failures <= 1:
        return 0
    return MAX_DELAY_S if failures > 12 else min(2 ** (failures - 2), MAX_DELAY_S)


def normalise_account(account: str) -> str:
    return account.strip().lower()[:255]


def throttle_key(client: str, account: str) -> str:
    return hashlib.sha256(f"{client}|{normalise_account(account)}".encode()).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """The answer to "may this client try this account now?": `wait_s` > 0 means no, try again after that."""

    allowed: bool
    wait_s: int = 0


def wait_message(wait_s: int) -> str:
    """What the page says while a client waits: how long, in words a person reads at a glance."""
    if wait_s < 120:
        span = f"{wait_s} second{'s' if wait_s != 1 else ''}"
    else:
        minutes = math.ceil(wait_s / 60)
        span = f"{minutes} minutes"
    return f"Too many failed attempts from here for this account. Try again in {span}."


async def begin_attempt(session: AsyncSession, client: str, account: str, *, now: datetime | None = None,
                        tries: int = 3) -> Attempt:
    """Count one attempt of `client` at `account` as failed until it succeeds, unless the client must still wait.

    Runs in the caller's transaction; commit before checking the password so parallel processes see it.
    """
    at = now or utcnow()
    key = throttle_key(client, account)
    await throttles_repo.ensure(session, key, client=client, account=normalise_account(account))
    for _ in range(tries):
        row = await throttles_repo.state(session, key)
        if row is None:  # cleared by an admin between the two statements
            return Attempt(True)
        failures, next_allowed = row
        if next_allowed is not None and next_allowed > at:
            return Attempt(False, max(1, math.ceil((next_allowed - at).total_seconds())))
        if await throttles_repo.count_failure(session, key, seen=failures, at=at,
                                              next_allowed=at + timedelta(seconds=delay_after(failures + 1))):
            return Attempt(True)
    return Attempt(False, 1)  # another process is counting this very pair right now


async def attempt_succeeded(session: AsyncSession, client: str, account: str) -> None:
    """A full login (password and, when enabled, the second factor) forgets the pair's failures."""
    await throttles_repo.forget(session, throttle_key(client, account))


async def list_throttles(session: AsyncSession, *, account: str = "", limit: int = 200) -> list[LoginThrottle]:
    """The pairs with failures, most recent first (for admins)."""
    return await throttles_repo.pairs(session, account=normalise_account(account) if account else "", limit=limit)


async def clear_throttles(session: AsyncSession, *, account: str = "", client: str = "",
                          everything: bool = False) -> int:
    """Forget the failures of one account, one client, or (with `everything`) all; returns how many pairs."""
    if not (account or client or everything):
        return 0
    return await throttles_repo.clear(session, account=normalise_account(account) if account else "", client=client)


@cache
def _dummy_hash() -> str:
    """An argon2 hash of a random password, made with the same parameters as real ones."""
    return hash_password(secrets.token_urlsafe(24))


def password_matches(password_hash: str | None, password: str) -> bool:
    """Check a password with one argon2 verification whether or not the account has a hash (or exists)."""
    if password_hash and password:
        return verify_password(password_hash, password)
    verify_password(_dummy_hash(), password or "-")
    return False


def warm_up() -> None:
    """Make the dummy hash now, so the first unknown email is not slower than a known one."""
    _dummy_hash()
