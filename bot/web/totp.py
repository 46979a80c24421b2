"""The optional second factor of supervisors and admins: a TOTP code (RFC 6238) from an authenticator app.

An admin enables it from the CLI (`tierdesk agents totp <agent> --enable`), which stores a fresh secret in
`agents.totp_secret` and prints the provisioning URI to scan; from then on the login asks for the 6-digit code
after the password, and the session has no rights until it was entered.
"""

from __future__ import annotations

from datetime import datetime

import pyotp

from bot.tickets.access import SUPERVISOR_ROLES

ISSUER = "tierdesk"


def may_have_second_factor(role: str) -> bool:
    """Only supervisors and admins get one: their sessions see every tier and change the team."""
    return role in SUPERVISOR_ROLES


def new_secret() -> str:
    """A random base32 secret (160 bits) for `agents.totp_secret`."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str) -> str:
    """The otpauth:// URI an authenticator app scans (as a QR code) or takes as text."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def clean_code(code: str) -> str:
    """What a person typed, without spaces or dashes ("123 456" is fine)."""
    return "".join(ch for ch in code if ch not in " -\t")[:16]


def code_ok(secret: str | None, code: str, *, at: datetime | None = None) -> bool:
    """Whether `code` is the current one (or the one just before or after, for clocks a little apart)."""
    typed = clean_code(code)
    if not secret or len(typed) != 6 or not typed.isdigit() or not typed.isascii():
        return False
    try:
        return pyotp.TOTP(secret).verify(typed, for_time=at, valid_window=1)
    except (ValueError, TypeError):  # a damaged secret in the table
        return False


def code_at(secret: str, at: datetime) -> str:
    """The code at a moment (what the authenticator app would show; for tests and the CLI's check)."""
    return pyotp.TOTP(secret).at(at)
