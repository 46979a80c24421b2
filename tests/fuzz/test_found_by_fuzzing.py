"""What the fuzzers found on the web side, kept as plain examples on both databases."""

from __future__ import annotations

from bot.web.tokens import create_token


async def test_a_non_ascii_csrf_token_is_refused_not_a_server_error(web_env):
    await web_env.agent("Sam", role="supervisor")
    assert (await web_env.login("Sam")).status_code == 303
    for token in ("ё", "\u0000", "é" * 40):
        r = await web_env.client.post("/tickets/1/notes", data={"csrf": token, "text": "hi"})
        assert r.status_code == 403, (token, r.status_code)
    r = await web_env.client.post("/login", data={"csrf": "ё", "email": "sam@desk.example", "password": "x"})
    assert r.status_code < 500


async def test_an_external_ref_cleaned_to_nothing_taken_twice_is_a_conflict(web_env):
    async with web_env.app.sessions() as s, s.begin():
        token = await create_token(s, "fuzz")
    headers = {"Authorization": f"Bearer {token}"}
    # "\u0000" passes the length check and is cleaned to "": the second one used to hit the unique index (500)
    body = {"name": "A", "external_ref": "\u0000"}
    first = await web_env.client.post("/api/v1/customers", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await web_env.client.post("/api/v1/customers", json=body, headers=headers)
    assert again.status_code == 409 and "external ref" in again.json()["detail"]
