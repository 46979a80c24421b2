"""An API channel's caller on loopback: receives reply callbacks, checks their signature, and answers as scripted
(200 by default; 500, 410, any status, or "timeout": no answer until the sender gives up)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from channels.webhook import verify


@dataclass
class Callback:
    body: dict[str, Any]
    headers: dict[str, str]
    signed: bool
    answered: int | str


class CallbackReceiver:
    """Use as ``async with CallbackReceiver(secret) as receiver:``; the callback URL is `receiver.url`."""

    def __init__(self, secret: str, *, hang_s: float = 3.0) -> None:
        self.secret, self.hang_s = secret, hang_s
        self.port = 0
        self.received: list[Callback] = []
        self._script: deque[int | str] = deque()
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> CallbackReceiver:
        app = web.Application()
        app.router.add_post("/replies", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/replies"

    def answer_next(self, *answers: int | str) -> None:
        self._script.extend(answers)

    def accepted(self) -> list[Callback]:
        return [c for c in self.received if c.answered == 200]

    async def wait_for(self, predicate: Callable[[], Any], within: float = 8.0) -> Any:
        deadline = time.monotonic() + within
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.02)
        return value

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        headers = dict(request.headers)
        signed = verify(
            self.secret, headers.get("X-Tierdesk-Timestamp", ""), raw, headers.get("X-Tierdesk-Signature", "")
        )
        answer = self._script.popleft() if self._script else 200
        self.received.append(Callback(json.loads(raw), headers, signed, answer))
        if answer == "timeout":
            await asyncio.sleep(self.hang_s)
            return web.Response(status=200)
        return web.json_response({"ok": answer == 200}, status=int(answer))
