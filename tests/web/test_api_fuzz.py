"""Schemathesis against /openapi.json: generated requests (valid and invalid) never get a 5xx, and answers
match the schema. All its phases run: the schema's examples, the coverage phase's boundary values (empty, longest,
just out of range, wrong type for every parameter and body field) and random fuzzing.
The app runs with a real App and database in a background thread, served by uvicorn."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from bot.app import App
from bot.settings import NluSettings, Settings, WebSettings
from bot.web import create_web_app, serve
from bot.web.tokens import create_token
from channels.memory import MemoryChannel
from crm_store.engine import make_engine, upgrade
from crm_store.models import Agent, Customer, Identity, Ticket
from tests.conftest import PG_URL, need_service
from tests.web.conftest import free_port

# The schema needs no database: build it from an app with a throwaway context.
_schema_app = create_web_app(type("Ctx", (), {"settings": Settings(web=WebSettings(secret_key="s" * 32))})())
schema = schemathesis.openapi.from_dict(_schema_app.openapi())


class Server:
    """App + uvicorn on their own event loop, so the synchronous fuzzer can call them."""

    def __init__(self, url: str, schema_name: str | None) -> None:
        self.url, self.schema_name = url, schema_name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await upgrade(self.url, schema=self.schema_name)
            st = Settings(database_url=self.url, database_schema=self.schema_name, nlu=NluSettings(enabled=False),
                          web=WebSettings(secret_key="k" * 32))
            app = App(st, channels=[MemoryChannel("console")])
            await app.start()
            async with app.sessions() as s, s.begin():
                self.token = await create_token(s, "fuzz")
                c = Customer(name="Fuzz Co", tier="ordinary")
                s.add(c)
                await s.flush()
                # an address and an agent, so that generated requests also open, route, answer and close tickets
                s.add_all([Identity(customer_id=c.id, channel="email", address="fuzz@example.com"),
                           Agent(name="Fuzz Agent", role="agent"),
                           Ticket(customer_id=c.id, channel="email", subject="seed")])
            task = asyncio.create_task(serve(app, "127.0.0.1", self.port))
            async with httpx.AsyncClient() as probe:
                for _ in range(100):
                    try:
                        await probe.get(self.base_url + "/healthz")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            self._ready.set()
            await self._stop.wait()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await app.stop()
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    def start(self) -> Server:
        self._thread.start()
        self._ready.wait(60)
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory) -> Iterator[Server]:
    if request.param == "sqlite":
        srv = Server(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}", None).start()
        yield srv
        srv.stop()
        return
    if not PG_URL:
        need_service("PostgreSQL", "TIERDESK_TEST_POSTGRES_URL is not set")
    name = f"fuzz_{uuid.uuid4().hex[:10]}"
    srv = Server(PG_URL, name).start()
    yield srv
    srv.stop()

    async def drop() -> None:
        engine = make_engine(PG_URL)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await engine.dispose()

    asyncio.run(drop())


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_fails_with_a_server_error(case, server):
    case.call_and_validate(
        base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )


def test_openapi_lists_the_resources():
    paths = _schema_app.openapi()["paths"]
    for path in ("/api/v1/customers", "/api/v1/customers/{customer_id}/identities", "/api/v1/contacts",
                 "/api/v1/tickets", "/api/v1/tickets/{ticket_id}/assign", "/api/v1/tickets/{ticket_id}/close",
                 "/api/v1/tickets/{ticket_id}/reply", "/api/v1/tickets/{ticket_id}/reopen",
                 "/api/v1/tickets/{ticket_id}/notes", "/api/v1/customers/{customer_id}/notes"):
        assert path in paths
    assert set(paths["/api/v1/tickets/{ticket_id}/notes"]) == {"get", "post"}
    ticket_in = _schema_app.openapi()["components"]["schemas"]["TicketIn"]["properties"]
    assert "queue" not in ticket_in and "priority" not in ticket_in  # the customer's tier decides them
    assert not any(p.startswith(("/contacts", "/login", "/webchat")) for p in paths)
