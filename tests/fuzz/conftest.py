"""The web fixtures (a started App with the web chat, its web app, uvicorn on loopback) for the fuzz tests."""

from tests.web.conftest import live, web_env  # noqa: F401
