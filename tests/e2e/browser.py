"""Playwright fixtures on Debian's Chromium (never a downloaded browser): skipped when it is missing, unless
TIERDESK_REQUIRE_SERVICES=1, when that fails the run."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import need_service

CHROMIUM = os.environ.get("TIERDESK_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("TIERDESK_TEST_ARTIFACTS", "test-artifacts"))


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not shutil.which(CHROMIUM):
        need_service("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        need_service("Playwright", str(exc))
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
