"""The web app's signing key: from settings, or generated once into the state folder so sessions and visitor
ids survive a restart."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from bot.settings import Settings

KEY_FILE = "web-secret.key"


def secret_key(settings: Settings) -> str:
    """The configured key, else the persisted one, else a new one written with owner-only permissions."""
    if settings.web.secret_key:
        return settings.web.secret_key
    path = Path(settings.state_dir) / KEY_FILE
    try:
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key)
    return key
