"""The rules of a one-time code, as plain functions: how it is made and kept (hashed, keyed), and what a code
typed in a chat means for the claims made from there."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from crm_store.trust import IdentityClaim

CODE_TTL = timedelta(minutes=15)
MAX_WRONG_TRIES = 5
CODES_PER_HOUR = 3
RATE_WINDOW = timedelta(hours=1)
LOOKBACK = timedelta(days=1)
"""A code typed in a chat is compared with the claims made there this long ago at most."""
CODE = re.compile(r"^\s*(\d{6})\s*$")


def looks_like_code(text: str) -> bool:
    return bool(CODE.match(text or ""))


def new_code() -> str:
    """Six digits from the system's random source."""
    return f"{secrets.randbelow(1_000_000):06d}"


def hash_code(code: str, key: bytes, salt: str | None = None) -> str:
    """`salt$hex`: an HMAC keyed by the server's secret, so a leaked table does not give the codes away by
    trying all million."""
    salt = salt if salt is not None else secrets.token_hex(8)
    digest = hmac.new(key, f"{salt}:{code}".encode(), hashlib.sha256).hexdigest()
    return f"{salt}${digest}"


def code_matches(stored: str, code: str, key: bytes) -> bool:
    salt, sep, _ = stored.partition("$")
    return bool(sep) and hmac.compare_digest(stored, hash_code(code, key, salt))


def signs(key: str, user_id: str, given_hash: str) -> bool:
    """Whether `given_hash` is HMAC-SHA256(key, user_id) in hex (how a website vouches for its logged-in user,
    as Intercom's identity verification does)."""
    if not key or not given_hash:
        return False
    expected = hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given_hash.strip().lower())


def user_hash(key: str, user_id: str) -> str:
    """What the website puts in `data-tierdesk-user-hash` for `user_id`."""
    return hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a typed code does: `outcome` is linked | wrong | refused | expired | used; `claim` is the claim it
    concerns; `left` the wrong tries still allowed."""

    outcome: str
    claim: IdentityClaim
    left: int = 0


def _live(claim: IdentityClaim, now: datetime) -> bool:
    return claim.status == "pending" and claim.expires_at is not None and claim.expires_at > now


Changes = list[tuple[IdentityClaim, dict[str, object]]]
"""(claim, new values) the store is to write: the rules here only decide."""


def judge(claims: list[IdentityClaim], code: str, key: bytes, now: datetime) -> tuple[Verdict | None, Changes]:
    """The verdict on `code` typed in the chat these claims (newest first) were made from, and the claims'
    changes (stale ones expire, a wrong code counts a try on each live one, the fifth refuses it). The verdict is
    None when the text answers no claim (no code pending there and it matches none): an ordinary message."""
    changes: Changes = [(c, {"status": "expired"}) for c in claims if c.status == "pending" and not _live(c, now)]
    matched = next((c for c in claims if code_matches(c.code_hash, code, key)), None)
    if matched is not None:
        if _live(matched, now):
            return Verdict("linked", matched), changes
        outcome = {"verified": "used", "refused": "refused"}.get(matched.status, "expired")
        return Verdict(outcome, matched), changes
    live = [c for c in claims if _live(c, now)]
    if not live:
        return None, changes
    for claim in live:
        tries = claim.attempts + 1
        changes.append((claim, {"attempts": tries, **({"status": "refused"} if tries >= MAX_WRONG_TRIES else {})}))
    left = MAX_WRONG_TRIES - (live[0].attempts + 1)
    return (Verdict("wrong", live[0], left=left) if left > 0 else Verdict("refused", live[0])), changes
