"""The web side of tierdesk: web chat, dashboard, REST API (one ASGI app).

The app is imported on first use, so that a plain helper (`bot.web.formatting`) costs nothing to import."""

from __future__ import annotations

from typing import Any

__all__ = ["create_web_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bot.web import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
