"""Files between a web chat visitor and agents, end to end: the real App and web app (uvicorn on loopback), the
visitor over a real WebSocket and HTTP upload, the agent in Telegram through aiogram against the loopback Bot API
server. A visitor's file reaches the agent as the file (sendDocument / sendPhoto with its bytes) and the web inbox
as a link; an agent's file from Telegram reaches the visitor as a link that opens it; bad uploads keep nothing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import func, select

from bot.app import App
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings, WebSettings
from bot.web import serve
from bot.web.auth import hash_password
from channels.telegram import RateLimiter, TelegramChannel
from channels.webchat import WebChatChannel
from crm_store.models import Contact
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import web as web_repo
from tests.e2e.botapi_files import FileBotApiServer
from tests.web.conftest import free_port
from tests.web.test_webchat import Visitor

FAST = RateLimiter(per_chat=1000, overall=1000, chat_burst=1000, overall_burst=1000)
ANA = 9001
PASSWORD = "correct horse battery"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
FILE_LINK = re.compile(r"(http://127\.0\.0\.1:\d+)?(/files/[0-9a-f]{32}/[^\s\"<]+)")


@dataclass
class Desk:
    app: App
    api: FileBotApiServer
    base_url: str
    http: httpx.AsyncClient

    async def visitor(self, token: str = "") -> tuple[Visitor, str]:
        ws = await websockets.connect(self.base_url.replace("http", "ws") + f"/webchat/ws?token={token}")
        v = Visitor(ws)
        hello = await v.expect(lambda f: f["type"] == "hello")
        await v.expect(lambda f: f["type"] == "history_end")
        return v, hello["visitor"]

    async def upload(self, token: str, name: str, data: bytes, mime: str) -> httpx.Response:
        return await self.http.post(f"/webchat/files?token={token}", files={"file": (name, data, mime)})

    async def to_ana(self, before: int, pattern: str, within: float = 15.0) -> dict:
        rx = re.compile(pattern, re.S)
        try:
            return await self.api.wait_for(
                lambda: next((m for m in self.api.sent_to(ANA)[before:] if rx.search(m.get("text", ""))), None),
                within,
            )
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} to Ana; got {self.api.texts_to(ANA)[before:]}") from None


@pytest.fixture
async def desk(db, tmp_path: Path) -> AsyncIterator[Desk]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=db.url,
        database_schema=db.schema,
        state_dir=str(tmp_path / "state"),
        nlu=NluSettings(enabled=False),
        outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05),
        dispatch=DispatchSettings(batch_wait_ms=1.0),
        web=WebSettings(max_message_chars=500, public_url=base),
    )
    async with FileBotApiServer() as api:
        telegram = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1, limiter=FAST)
        app = App(settings, channels=[WebChatChannel(max_message_chars=500), telegram])
        await app.start()
        task = asyncio.create_task(serve(app, "127.0.0.1", port))
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(100):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            async with app.sessions() as s, s.begin():
                agent = await agents_repo.add_agent(
                    s, name="Ana", capacity=3, addresses={"telegram": str(ANA)}, email="ana@desk.example"
                )
                await web_repo.set_password_hash(s, agent.id, hash_password(PASSWORD))
            try:
                yield Desk(app, api, base, http)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await app.stop()


async def _login(desk: Desk) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=desk.base_url)
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    await client.post("/login", data={"email": "ana@desk.example", "password": PASSWORD, "csrf": csrf, "next": "/"})
    return client


async def test_a_visitors_files_reach_the_agent_as_files_and_the_agents_file_reaches_the_visitor(desk: Desk):
    api = desk.api
    v, token = await desk.visitor()
    sent = await desk.upload(token, "receipt.pdf", PDF, "application/pdf")
    assert sent.status_code == 200, sent.text
    ref = sent.json()
    assert ref["name"] == "receipt.pdf" and ref["size"] == len(PDF) and ref["mime"] == "application/pdf"
    await v.send({"type": "message", "client_id": "f1", "text": "", "files": [ref]})
    await v.expect(lambda f: f["type"] == "ack" and f["client_id"] == "f1")
    notice = await desk.to_ana(0, r"New ticket T-\d+ .*Why: attachment without text")
    tid = int(re.search(r"T-(\d+)", notice["text"]).group(1))
    [doc] = await api.wait_for(lambda: api.uploads_to(ANA) or None)
    assert (doc.method, doc.name, doc.data) == ("sendDocument", "receipt.pdf", PDF)

    # A photo with words: the assignee gets the words, then the photo itself.
    photo = (await desk.upload(token, "label.png", PNG, "image/png")).json()
    await v.send({"type": "message", "client_id": "f2", "text": "and the label", "files": [photo]})
    await desk.to_ana(0, rf"T-{tid} · Visitor \d+: and the label \[photo: label\.png, 1 KB\]")
    uploads = await api.wait_for(lambda: len(api.uploads_to(ANA)) >= 2 and api.uploads_to(ANA))
    assert (uploads[1].method, uploads[1].data) == ("sendPhoto", PNG)

    # The web inbox shows both as links that open the files.
    inbox = await _login(desk)
    try:
        page = (await inbox.get(f"/tickets/{tid}")).text
        links = re.findall(r'href="(/files/[0-9a-f]{32}/[^"]+)"', page)
        assert [link.rsplit("/", 1)[1] for link in links] == ["receipt.pdf", "label.png"], links
        assert (await inbox.get(links[0])).content == PDF
    finally:
        await inbox.aclose()

    # Ana answers in Telegram with a document: the visitor gets a link in the agent's message, and it opens.
    before = len(api.sent_to(ANA))
    api.file_message(
        api.user(ANA, "Ana"),
        "document",
        PDF,
        file_name="refund form.pdf",
        mime_type="application/pdf",
        caption="Please fill this in.",
        reply_to=notice["message_id"],
    )
    await desk.to_ana(before, rf"Queued for Visitor \d+ on T-{tid}")
    reply = await v.expect(lambda f: f["type"] == "message" and f["from"] == "agent", within=15)
    assert reply["text"].startswith("Please fill this in.\nrefund form.pdf (2 KB): ")
    origin, path = FILE_LINK.search(reply["text"]).groups()
    assert origin == desk.base_url and path.endswith("/refund%20form.pdf")
    opened = await desk.http.get(path)
    assert opened.status_code == 200 and opened.content == PDF
    assert "attachment" in opened.headers["content-disposition"]

    # On reconnect the widget gets its own file-only message back with the file it named.
    await v.ws.close()
    again, _ = await desk.visitor(token)
    await again.ws.close()
    mine = next(f for f in again.frames if f.get("client_id") == "f1")
    assert mine["files"] == [{"name": "receipt.pdf", "ref": ref["ref"]}]


async def test_bad_uploads_and_forged_files_keep_nothing_and_say_why(desk: Desk, tmp_path: Path):
    v, token = await desk.visitor()
    big = await desk.upload(token, "scan.tiff", b"x" * (10 * 1024 * 1024 + 1), "image/tiff")
    assert big.status_code == 413 and big.json() == {"error": "scan.tiff is over 10 MB; nothing was sent."}
    empty = await desk.upload(token, "empty.txt", b"", "text/plain")
    assert empty.status_code == 400 and empty.json() == {"error": "empty.txt is empty; nothing was sent."}
    stranger = await desk.upload("not-a-visitor", "a.pdf", PDF, "application/pdf")
    assert stranger.status_code == 403 and "Reconnect the chat" in stranger.json()["error"]
    nothing = await desk.http.post(f"/webchat/files?token={token}", data={"x": "1"})
    assert nothing.status_code == 400 and nothing.json() == {"error": "Attach one file."}
    folder = tmp_path / "state" / "uploads"
    assert not folder.exists() or not list(folder.iterdir())

    forged = {"ref": "upload:" + "0" * 31, "name": "x.pdf", "size": 1, "mime": "application/pdf"}
    await v.send({"type": "message", "client_id": "g1", "text": "see", "files": [forged]})
    error = await v.expect(lambda f: f["type"] == "error")
    assert error["code"] == "bad_files" and error["client_id"] == "g1"
    await v.send({"type": "message", "client_id": "g2", "text": "", "files": []})
    assert (await v.expect(lambda f: f["type"] == "error"))["code"] == "empty"
    await v.ws.close()
    async with desk.app.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Contact).where(Contact.direction == "in")) == 0
