"""`tierdesk customers export|erase|hold|retain` on the `tierdesk` command line (its Typer app, run in a thread
as a user's shell would, on SQLite and PostgreSQL), and the same actions on the dashboard's customer page: for
admins only."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli.main import app as cli_app
from bot.settings import get_settings
from crm_store.models import Contact, Customer, Identity
from crm_store.repositories import audit
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo
from tests.crm_store.test_privacy import D0, _contact, seed
from tests.web.conftest import WebEnv, web_env  # noqa: F401 (the web app's fixture)

KEEP = (datetime.now(UTC) - D0).days + 60
"""A retention period that keeps the seeded history (written at D0) and not a contact older than it."""


@pytest.fixture
def cli_env(db, monkeypatch) -> Iterator[dict[str, str]]:
    """The command line's settings pointed at the test database (settings are cached: cleared both ways)."""
    env = {"TIERDESK_DATABASE_URL": db.url, "COLUMNS": "200"}
    if db.schema:
        env["TIERDESK_DATABASE_SCHEMA"] = db.schema
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


async def tierdesk(*args: str) -> Result:
    """`tierdesk customers ...`; in a thread, since each command runs its own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli_app, ["customers", *args])


async def test_cli_exports_holds_and_erases_a_customer(db, cli_env, tmp_path: Path):
    await seed(db)
    out = tmp_path / "vera.json"
    r = await tierdesk("export", "C-1", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {k: len(data[k]) for k in ("identities", "contacts", "tickets", "notes", "tier_changes", "value_events",
                                      "identity_claims")} == {"identities": 2, "contacts": 2, "tickets": 1,
                                                              "notes": 1, "tier_changes": 1, "value_events": 1,
                                                              "identity_claims": 1}
    assert data["customer"]["name"] == "Vera Quist" and len(data["tickets"][0]["events"]) == 2
    assert (await tierdesk("hold", "1", "--on")).exit_code == 0
    refused = await tierdesk("erase", "1", "--yes")
    assert refused.exit_code == 1 and "under legal hold" in refused.stderr and "Traceback" not in refused.stderr
    async with db.sessions() as ses:
        assert (await ses.get(Customer, 1)).name == "Vera Quist"
    assert (await tierdesk("hold", "1", "--off")).exit_code == 0
    erased = await tierdesk("erase", "1", "--yes")
    assert erased.exit_code == 0, erased.stderr
    assert "2 contacts and 1 notes blanked, 2 identities removed" in erased.stdout
    after = json.loads((await tierdesk("export", "1")).stdout)
    assert [c["text"] for c in after["contacts"]] == ["", ""] and after["identities"] == []
    assert after["customer"]["name"] == "" and after["customer"]["erased_at"]
    async with db.sessions() as ses:
        actions = [(e.action, e.actor) for e in await audit.entries(ses, subject="customer:1")]
    assert actions == [("customer_exported", "cli"), ("customer_erased", "cli"), ("legal_hold_off", "cli"),
                       ("legal_hold_on", "cli"), ("customer_exported", "cli")]


async def test_cli_refuses_bad_numbers_and_retains_old_contacts(db, cli_env):
    await seed(db)
    async with db.sessions() as ses, ses.begin():
        ses.add(_contact(9, 2, "in", "old zanzibar words", datetime.now(UTC) - timedelta(days=KEEP + 30)))
    bad = await tierdesk("export", "abc")
    assert bad.exit_code == 2 and "is not a customer number" in bad.stderr
    missing = await tierdesk("erase", "99999", "--yes")
    assert missing.exit_code == 1 and "C-99999 not found" in missing.stderr
    r = await tierdesk("retain", "--days", str(KEEP))
    assert r.exit_code == 0 and f"1 contacts older than {KEEP} days anonymised" in r.stdout, r.stderr
    async with db.sessions() as ses:
        texts = dict((await ses.execute(select(Contact.id, Contact.text))).all())
    assert texts[9] == "" and texts[3] == "Olaf says zanzibar"


async def _customer(env: WebEnv) -> int:
    async with env.app.sessions() as s, s.begin():
        c = await customers_repo.create_customer(s, name="Nina Secret", identities={"email": "nina@x.example"},
                                                 tier="VIP")
        s.add(Contact(channel="email", external_id="<n1@x>", direction="in", address="nina@x.example",
                      customer_id=c.id, text="Nina's password is hunter2"))
        await tickets_repo.add_note(s, customer_id=c.id, text="Nina called")
        return c.id


async def _csrf(env: WebEnv, cid: int) -> tuple[str, str]:
    page = await env.client.get(f"/customers/{cid}")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1), page.text


async def test_dashboard_privacy_actions_are_for_admins_only(web_env):  # noqa: F811
    cid = await _customer(web_env)
    for name, role in (("Vic", "agent"), ("Sue", "supervisor")):
        await web_env.agent(name, role=role)
        await web_env.login(name)
        token, page = await _csrf(web_env, cid)
        assert 'id="privacy"' not in page
        for action, data in (("export", {}), ("hold", {"on": "1"}), ("erase", {"confirm": f"C-{cid}"})):
            r = await web_env.client.post(f"/customers/{cid}/{action}", data={"csrf": token, **data})
            assert r.status_code == 403, (name, action)
        web_env.client.cookies.clear()
    async with web_env.app.sessions() as s:
        customer = await s.get(Customer, cid)
        assert (customer.name, customer.legal_hold, customer.erased_at) == ("Nina Secret", False, None)
        assert await audit.entries(s, subject=f"customer:{cid}") == []


async def test_dashboard_admin_exports_holds_and_erases(web_env):  # noqa: F811
    cid = await _customer(web_env)
    await web_env.agent("Ada", role="admin")
    await web_env.login("Ada")
    token, page = await _csrf(web_env, cid)
    assert 'id="privacy"' in page and f"Type <b>C-{cid}</b>" in page
    export = await web_env.client.post(f"/customers/{cid}/export", data={"csrf": token})
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    assert [c["text"] for c in export.json()["contacts"]] == ["Nina's password is hunter2"]
    assert (await web_env.client.post(f"/customers/{cid}/export", data={"csrf": "forged"})).status_code == 403
    assert (await web_env.client.post(f"/customers/{cid}/hold", data={"csrf": token, "on": "1"})).status_code == 303
    held = await web_env.client.post(f"/customers/{cid}/erase", data={"csrf": token, "confirm": f"C-{cid}"})
    assert held.status_code == 409 and "legal hold" in held.text
    assert (await web_env.client.post(f"/customers/{cid}/hold", data={"csrf": token, "on": "0"})).status_code == 303
    typo = await web_env.client.post(f"/customers/{cid}/erase", data={"csrf": token, "confirm": "C-0"})
    assert typo.status_code == 422 and "Nothing was erased" in typo.text
    done = await web_env.client.post(f"/customers/{cid}/erase", data={"csrf": token, "confirm": f"c-{cid}"})
    assert done.status_code == 303
    _, page = await _csrf(web_env, cid)
    assert "Erased" in page and "hunter2" not in page and "Nina" not in page
    async with web_env.app.sessions() as s:
        assert list(await s.scalars(select(Identity).where(Identity.customer_id == cid))) == []
        actions = [e.action for e in await audit.entries(s, subject=f"customer:{cid}")]
    assert actions == ["customer_erased", "legal_hold_off", "legal_hold_on", "customer_exported"]


async def test_tierdesk_run_applies_the_retention_setting_in_the_background(db, tmp_path):
    from bot.app import App
    from bot.runner import background_jobs
    from bot.settings import PrivacySettings
    from tests.bot.conftest import settings_for

    await seed(db)
    async with db.sessions() as ses, ses.begin():
        ses.add(_contact(9, 2, "in", "old zanzibar words", datetime.now(UTC) - timedelta(days=KEEP + 30)))
    settings = settings_for(db, state_dir=str(tmp_path / "state"), privacy=PrivacySettings(retain_contacts_days=KEEP))
    jobs = background_jobs(settings)
    assert "retention_job" in [job.__name__ for job in jobs]
    app = App(settings, background=[j for j in jobs if j.__name__ == "retention_job"])
    await app.start()
    try:
        for _ in range(100):
            async with db.sessions() as ses:
                if (await ses.get(Contact, 9)).text == "":
                    break
            await asyncio.sleep(0.05)
    finally:
        await app.stop()
    async with db.sessions() as ses:
        texts = dict((await ses.execute(select(Contact.id, Contact.text))).all())
    assert texts[9] == "" and texts[3] == "Olaf says zanzibar" and texts[1].startswith("My quixotic")
