"""The web side of tierdesk: web chat, dashboard, REST API (one ASGI app)."""

from bot.web.app import create_web_app, serve

__all__ = ["create_web_app", "serve"]
