"""Generated form posts to every dashboard POST route, with a logged-in supervisor's session and (mostly) its
CSRF token: NUL bytes, lone surrogates (as raw invalid UTF-8), megabyte values, huge numbers, unknown fields and
broken path parts. No answer may be a 5xx; a refusal is a 4xx page that says why, never a traceback."""

from __future__ import annotations

import re
import time
from collections import Counter
from urllib.parse import quote, quote_plus

from hypothesis import strategies as st
from starlette.routing import Route

from crm_store.models import Customer, Ticket
from tests.fuzz.nasty import FUZZ_EXAMPLES, collect, nasty_text, one_of_values

FIELDS = ["csrf", "text", "agent", "agent_id", "until", "priority", "tags", "subject", "email", "password", "next",
          "code", "tier", "reason", "confirm", "account", "client", "\x00", "x"]
REFS = ["1", "2", "0", "-1", "99999999999999999999", "1e3", "", " 1", "１", "\x00", "\ud800", "../1", "%2e%2e"]


def _routes(routes: list) -> list[Route]:
    """Routes, with those of included routers (FastAPI keeps them behind a wrapper with `original_router`)."""
    found: list[Route] = []
    for route in routes:
        if isinstance(route, Route):
            found.append(route)
        elif getattr(route, "original_router", None) is not None:
            found += _routes(route.original_router.routes)
    return found


def post_routes(web) -> list[Route]:
    """Every POST route of the dashboard (the REST API and the channel webhooks have their own fuzzers)."""
    return [r for r in _routes(web.routes) if "POST" in (r.methods or ())
            and not r.path.startswith("/api/") and not r.path.endswith("/webhook")]


def encode(value: str) -> str:
    """Percent-encoded as a browser would, lone surrogates as the invalid UTF-8 bytes a hostile client sends."""
    return quote_plus(value.encode("utf-8", "surrogatepass"))


form_post = st.tuples(
    st.integers(0, 10_000),  # which route (modulo their number)
    st.lists(one_of_values(REFS) | nasty_text | st.integers().map(str), min_size=3, max_size=3),
    st.integers(0, 9),  # 0: no CSRF, 1: a wrong one, else the session's
    st.lists(st.tuples(one_of_values(FIELDS), nasty_text | st.integers().map(str)), max_size=5),
)


def build(web, csrf: str, draw: tuple) -> tuple[str, bytes]:
    index, refs, csrf_kind, fields = draw
    routes = post_routes(web)
    route = routes[index % len(routes)]
    parts = iter(refs)
    path = re.sub(r"\{[^}]+\}", lambda m: quote(next(parts)[:2000].encode("utf-8", "surrogatepass"), safe=""),
                  route.path)
    token = csrf if csrf_kind > 1 and route.path != "/logout" else "wrong" if csrf_kind else ""
    form = [("csrf", token), *fields]  # a logout is always refused: the session must live through the run
    return path, "&".join(f"{encode(k)}={encode(v)}" for k, v in form).encode()


async def session_csrf(env) -> str:
    page = await env.client.get("/tickets")
    assert page.status_code == 200, page.status_code
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


async def test_generated_form_posts_never_get_a_server_error(web_env):
    started = time.monotonic()
    await web_env.agent("Sam", role="supervisor")
    async with web_env.app.sessions() as s, s.begin():
        customer = Customer(name="Fuzz", tier="VIP")
        s.add(customer)
        await s.flush()
        s.add_all([Ticket(customer_id=customer.id, channel="webchat", subject="seed"),
                   Ticket(customer_id=customer.id, channel="email", subject="seed 2")])
    assert (await web_env.login("Sam")).status_code == 303
    csrf = await session_csrf(web_env)
    # Ten thousand on SQLite; a tenth on PostgreSQL, where each post costs more and the routes are the same.
    wanted = FUZZ_EXAMPLES if web_env.app.settings.database_url.startswith("sqlite") else FUZZ_EXAMPLES // 10
    posts = collect(form_post, wanted)
    statuses: Counter[int] = Counter()
    routes: Counter[str] = Counter()
    for draw in posts:
        path, body = build(web_env.web, csrf, draw)
        r = await web_env.client.post(path, content=body,
                                      headers={"content-type": "application/x-www-form-urlencoded"})
        statuses[r.status_code] += 1
        routes[path.split("/")[1]] += 1
        assert r.status_code < 500, (path[:80], body[:200], r.status_code, r.text[:300])
        assert "Traceback" not in r.text
        if 400 <= r.status_code < 500 and r.status_code != 405:
            assert r.text.strip(), (path[:80], r.status_code)
    print(f"dashboard forms: {sum(statuses.values())} generated posts to {len(post_routes(web_env.web))} routes in "
          f"{time.monotonic() - started:.0f}s: {dict(sorted(statuses.items()))} {dict(routes)}")
    assert sum(statuses.values()) >= wanted
    assert statuses[303] >= wanted // 100 and statuses[403] >= wanted // 10  # both work done and forms refused
