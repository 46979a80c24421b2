"""Security headers on every response (dashboard, API, widget files, demo page, docs, errors) and templates that
need no inline script, so the Content-Security-Policy can forbid it."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import browser  # noqa: F401 - fixture
from tests.web.conftest import PASSWORD, live  # noqa: F401 - fixture

TEMPLATES = Path(__file__).resolve().parents[2] / "bot" / "web" / "templates"


def directives(response: httpx.Response) -> dict[str, str]:
    policy = response.headers.get("content-security-policy", "")
    assert policy, f"{response.request.url} has no CSP"
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
            for part in (p.strip() for p in policy.split(";")) if part}


def assert_common(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in ("same-origin", "no-referrer", "strict-origin")
    assert "strict-transport-security" not in response.headers  # plain http here


def assert_unframeable(response: httpx.Response) -> None:
    assert directives(response)["frame-ancestors"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"


async def test_dashboard_pages_forbid_inline_script_and_framing(web_env):
    await web_env.agent("Sue", role="supervisor")
    login = await web_env.client.get("/login")
    assert_common(login)
    assert_unframeable(login)
    await web_env.login("Sue")
    for page in ("/", "/tickets", "/contacts", "/agents", "/tickets/999"):
        r = await web_env.client.get(page)
        assert r.status_code in (200, 404), page
        assert_common(r)
        assert_unframeable(r)
        csp = directives(r)
        assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
        assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'" and csp["form-action"] == "'self'"
        assert "unsafe" not in r.headers["content-security-policy"]
    redirect = await httpx.AsyncClient(transport=httpx.ASGITransport(app=web_env.web),
                                       base_url="http://testserver").get("/tickets")
    assert redirect.status_code == 303
    assert_common(redirect)
    assert_unframeable(redirect)


async def test_api_answers_run_nothing_and_cannot_be_framed(web_env):
    for path in ("/api/v1/customers", "/api/v1/tickets/1", "/openapi.json", "/healthz"):
        r = await web_env.client.get(path)
        assert_common(r)
        assert_unframeable(r)
    api = await web_env.client.get("/api/v1/customers")
    assert api.status_code == 401 and directives(api)["default-src"] == "'none'"


async def test_widget_files_are_not_sniffed_and_the_demo_page_is_not_framed_by_default(web_env):
    js = await web_env.client.get("/widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert_common(js)
    css = await web_env.client.get("/widget.css")
    assert css.headers["content-type"].startswith("text/css")
    assert_common(css)
    demo = await web_env.client.get("/demo")
    assert demo.status_code == 200 and "<style" not in demo.text
    assert_common(demo)
    assert_unframeable(demo)
    assert directives(demo)["script-src"] == "'self'" and directives(demo)["connect-src"] == "'self'"


@pytest.mark.parametrize("web_env", [{"widget_origins": ["https://shop.example", "javascript:alert(1)"]}],
                         indirect=True)
async def test_only_configured_sites_may_frame_the_widget_pages(web_env):
    demo = await web_env.client.get("/demo")
    assert directives(demo)["frame-ancestors"] == "'self' https://shop.example"  # the bad entry is dropped
    assert "x-frame-options" not in demo.headers
    assert_common(demo)
    assert_unframeable(await web_env.client.get("/login"))  # the dashboard stays unframeable


async def test_hsts_only_over_https(web_env):
    plain = await web_env.client.get("/login")
    assert "strict-transport-security" not in plain.headers
    proxied = await web_env.client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert proxied.headers["strict-transport-security"].startswith("max-age=31536000")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web_env.web),
                                 base_url="https://testserver") as tls:
        direct = await tls.get("/api/v1/customers")
    assert "max-age=" in direct.headers["strict-transport-security"]


async def test_api_docs_allow_exactly_their_own_inline_script(web_env):
    docs = await web_env.client.get("/api/docs")
    assert docs.status_code == 200
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    script_src = directives(docs)["script-src"]
    assert f"'sha256-{digest}'" in script_src and "unsafe-inline" not in script_src
    assert_unframeable(docs)


def test_no_template_has_inline_script_style_or_handlers():
    found = sorted(TEMPLATES.glob("*.html"))
    assert len(found) >= 10
    for path in found:
        html = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html, re.I):
            assert re.search(r"\bsrc=", tag), f"{path.name}: inline script {tag}"
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html, re.I), f"{path.name}: script with a body"
        assert not re.search(r"\son[a-z]+\s*=", html, re.I), f"{path.name}: inline event handler"
        assert not re.search(r"<style\b|\sstyle\s*=", html, re.I), f"{path.name}: inline style"
        assert "javascript:" not in html.lower(), f"{path.name}: javascript: URL"


async def test_chromium_runs_the_widget_and_dashboard_under_the_policy_and_refuses_to_frame_it(
        live, browser):  # noqa: F811
    await live.agent("Sue", role="supervisor")
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(10_000)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(f"{live.base_url}/demo")
    await page.click("#td-launcher")
    await page.wait_for_selector("#td-status:has-text('online')")  # script and WebSocket from 'self' allowed
    await page.goto(f"{live.base_url}/login")
    await page.fill("input[name=email]", "sue@desk.example")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("h1")
    assert refused == []
    await page.set_content(f'<iframe id="f" src="{live.base_url}/login"></iframe>')
    await page.wait_for_timeout(500)
    framed = page.frames[1]
    assert await framed.locator("input[name=email]").count() == 0  # Chromium refused to show it in a frame
    await context.close()
