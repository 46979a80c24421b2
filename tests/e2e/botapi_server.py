"""A Bot-API-compatible HTTP server on loopback, so the real aiogram and python-telegram-bot clients can be tested.

It speaks Telegram's shapes (``{"ok": true, "result": ...}`` and ``{"ok": false, "error_code": ..., "description":
..., "parameters": {"retry_after": N}}``), keeps per-chat message ids like Telegram does, long-polls getUpdates with
offset confirmation, pushes updates to a webhook with the secret header, and records every call the bot made.
Tests play the people on the other side (`user_message`, `press_button`, `edit_message`) and script failures
(`fail_next`, `block`, `flood_limit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from tests.e2e.botapi_updates import UpdateQueue
from tests.e2e.botapi_wire import BOT_USER, INT_FIELDS, JSON_FIELDS, MAX_TEXT, ApiError, Call, Failure, Webhook

__all__ = ["BOT_USER", "ApiError", "BotApiServer", "Call", "Failure"]


class BotApiServer(UpdateQueue):
    """Use as ``async with BotApiServer() as api:``; point clients at ``api.base_url``."""

    def __init__(self, token: str = "123456:TEST-token", *, host: str = "127.0.0.1") -> None:
        self.token = token
        self.host = host
        self.port = 0
        self.calls: list[Call] = []
        self.messages: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
        """Every message in every chat (sent by the bot or by people), by chat id and message id."""
        self.topics: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
        self.blocked: set[int] = set()
        self.known_chats: set[int] | None = None
        """When set, sending to any other chat gets 400 "chat not found"."""
        self.webhook: Webhook | None = None
        self.webhook_retry_s = 0.05
        self._pending: deque[dict[str, Any]] = deque()
        self._confirmed_below = 0
        self._update_ids = itertools.count(700_000_001)
        self._message_ids: dict[int, itertools.count] = defaultdict(lambda: itertools.count(1))
        self._callback_ids = itertools.count(1)
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        self._flood: tuple[int, float] | None = None
        self._sent_at: dict[int, deque[float]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    client_max_size = 4 * 1024 * 1024

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._handle)

    async def __aenter__(self) -> BotApiServer:
        app = web.Application(client_max_size=self.client_max_size)
        self._routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._client = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.webhook and self.webhook.task:
            self.webhook.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.webhook.task
        if self._client:
            await self._client.close()
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """For aiogram's ``TelegramAPIServer.from_base``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ptb_base_url(self) -> str:
        """For python-telegram-bot's ``ApplicationBuilder().base_url`` (the token is appended)."""
        return f"{self.base_url}/bot"

    # -- scripting ---------------------------------------------------------------------------------------------

    def fail_next(self, method: str, times: int = 1, *, code: int = 429, description: str = "",
                  retry_after: int | None = None) -> None:
        """The next `times` calls of `method` fail with Telegram's error shape."""
        if code == 429 and retry_after is None:
            retry_after = 1
        if not description:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                403: "Forbidden: bot was blocked by the user",
                400: "Bad Request: chat not found",
            }.get(code, "Internal Server Error")
        for _ in range(times):
            self._failures[method.lower()].append(Failure(code, description, retry_after))

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: every send to them gets 403."""
        self.blocked.add(int(chat_id))

    def flood_limit(self, per_chat: int, window_s: float = 1.0) -> None:
        """Answer 429 like Telegram when more than `per_chat` messages go to one chat within `window_s`."""
        self._flood = (per_chat, window_s)

    # -- people on the other side -----------------------------------------------------------------------------

    def user(self, user_id: int, first_name: str = "User", username: str = "", **extra: Any) -> dict[str, Any]:
        user = {"id": user_id, "is_bot": False, "first_name": first_name, **extra}
        if username:
            user["username"] = username
        return user

    def _chat_of(self, user: dict[str, Any], chat: dict[str, Any] | None) -> dict[str, Any]:
        if chat is not None:
            return chat
        return {"id": user["id"], "type": "private", "first_name": user.get("first_name", "")}

    def new_message(self, user: dict[str, Any], text: str = "", *, chat: dict[str, Any] | None = None,
                    reply_to: int | None = None, thread_id: int | None = None, **fields: Any) -> dict[str, Any]:
        """A message from a person, stored in its chat with the next message id (not yet an update)."""
        chat = self._chat_of(user, chat)
        message_id = next(self._message_ids[chat["id"]])
        message: dict[str, Any] = {"message_id": message_id, "from": user, "chat": chat, "date": int(time.time())}
        if text:
            message["text"] = text
            if text.startswith("/"):  # Telegram marks commands; PTB's CommandHandler relies on it
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to is not None:
            original = self.messages[chat["id"]].get(reply_to)
            message["reply_to_message"] = original or {"message_id": reply_to, "chat": chat, "date": 0}
        elif thread_id is not None:
            topic = self.topics.get(chat["id"], {}).get(thread_id, {})
            created = {"name": topic.get("name", "topic"), "icon_color": topic.get("icon_color", 0)}
            message["reply_to_message"] = {"message_id": thread_id, "message_thread_id": thread_id, "chat": chat,
                                           "date": 0, "forum_topic_created": created}
        message.update(fields)
        self.messages[chat["id"]][message_id] = message
        return message

    def user_message(self, user: dict[str, Any], text: str = "", **kwargs: Any) -> dict[str, Any]:
        """A person writes; the update is queued for getUpdates or pushed to the webhook. Returns the update."""
        return self.push({"message": self.new_message(user, text, **kwargs)})

    def edit_message(self, user: dict[str, Any], message_id: int, text: str, *,
                     chat: dict[str, Any] | None = None) -> dict[str, Any]:
        chat = self._chat_of(user, chat)
        message = dict(self.messages[chat["id"]][message_id], text=text, edit_date=int(time.time()))
        self.messages[chat["id"]][message_id] = message
        return self.push({"edited_message": message})

    def press_button(self, user: dict[str, Any], message: dict[str, Any], data: str) -> dict[str, Any]:
        """A person presses an inline button under `message` (a message the bot sent)."""
        query = {"id": f"cb{next(self._callback_ids)}", "from": user, "message": message,
                 "chat_instance": "1", "data": data}
        return self.push({"callback_query": query})

    # -- what the bot did --------------------------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method.lower()]

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        """Messages the bot successfully sent to a chat, in order."""
        return [c.result for c in self.calls_of("sendMessage") if c.status == 200 and c.result["chat"]["id"] ==
                int(chat_id)]

    def sent_in_topic(self, chat_id: int, thread_id: int) -> list[dict[str, Any]]:
        """Messages the bot successfully sent into one forum topic, in order."""
        return [m for m in self.sent_to(chat_id) if m.get("message_thread_id") == thread_id]

    def texts_to(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.sent_to(chat_id)]

    async def wait_for(self, predicate: Callable[[], Any], within: float = 5.0) -> Any:
        """Wait until `predicate()` is truthy (re-checked after every request and every 50 ms); return its value."""
        async def _wait() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.05)
                return value
        return await asyncio.wait_for(_wait(), within)

    def _notify(self) -> None:
        async def _wake() -> None:
            async with self._changed:
                self._changed.notify_all()
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(_wake())
        if self.webhook and (self.webhook.task is None or self.webhook.task.done()):
            self.webhook.task = asyncio.get_running_loop().create_task(self._push_webhook())

    # -- HTTP --------------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        params = await self._params(request)
        call = Call(method=method, params=params, at=time.monotonic())
        self.calls.append(call)
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            if self._failures[method]:
                failure = self._failures[method].popleft()
                raise ApiError(failure.code, failure.description, failure.retry_after)
            call.result = await handler(params)
            body: dict[str, Any] = {"ok": True, "result": call.result}
        except ApiError as exc:
            call.status, body = exc.code, exc.body()
        self._notify()
        return web.json_response(body, status=call.status)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        for key, value in list(params.items()):
            if key in JSON_FIELDS and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
            elif key in INT_FIELDS and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    params[key] = int(value)
        return params

    # -- methods -----------------------------------------------------------------------------------------------

    async def _m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return BOT_USER

    def _check_chat(self, chat_id: Any) -> int:
        try:
            chat = int(chat_id)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None
        if chat in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if self.known_chats is not None and chat not in self.known_chats and chat not in self.messages:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _check_flood(self, chat: int) -> None:
        if not self._flood:
            return
        per_chat, window = self._flood
        now = time.monotonic()
        sent = self._sent_at[chat]
        while sent and now - sent[0] > window:
            sent.popleft()
        if len(sent) >= per_chat:
            raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        sent.append(now)

    def _check_markup(self, markup: Any) -> None:
        if not markup:
            return
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    async def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._check_chat(params.get("chat_id"))
        text = str(params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        if params.get("parse_mode") == "HTML" and text.count("<") != text.count(">"):
            raise ApiError(400, "Bad Request: can't parse entities: unclosed start tag")
        self._check_markup(params.get("reply_markup"))
        thread = params.get("message_thread_id")
        if thread is not None and thread not in self.topics.get(chat, {}):
            raise ApiError(400, "Bad Request: message thread not found")
        self._check_flood(chat)
        message_id = next(self._message_ids[chat])
        existing = next(iter(self.messages[chat].values()), None)
        chat_obj = existing["chat"] if existing else {"id": chat, "type": "private" if chat > 0 else "supergroup"}
        message: dict[str, Any] = {"message_id": message_id, "from": BOT_USER, "chat": chat_obj,
                                   "date": int(time.time()), "text": text}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        if thread is not None:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        reply = params.get("reply_parameters") or {}
        reply_id = reply.get("message_id") if isinstance(reply, dict) else None
        reply_id = reply_id or params.get("reply_to_message_id")
        if reply_id:
            if reply_id in self.messages[chat]:
                message["reply_to_message"] = self.messages[chat][reply_id]
            elif not (isinstance(reply, dict) and reply.get("allow_sending_without_reply")):
                raise ApiError(400, "Bad Request: message to be replied not found")
        self.messages[chat][message_id] = message
        return message

    def _stored(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat = self._check_chat(params.get("chat_id"))
        message = self.messages.get(chat, {}).get(params.get("message_id"))  # type: ignore[arg-type]
        if message is None or message.get("from", {}).get("id") != BOT_USER["id"]:
            raise ApiError(400, "Bad Request: message to edit not found")
        return chat, message

    async def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._stored(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        if message.get("text") == params.get("text") and message.get("reply_markup") == markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message")
        message = dict(message, text=str(params.get("text", "")), edit_date=int(time.time()))
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        self.messages[chat][message["message_id"]] = message
        return message

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._stored(params)
        markup = params.get("reply_markup")
        self._check_markup(markup)
        message = dict(message, edit_date=int(time.time()))
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        self.messages[chat][message["message_id"]] = message
        return message

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    async def _m_sendchataction(self, params: dict[str, Any]) -> bool:
        self._check_chat(params.get("chat_id"))
        return True

    async def _m_createforumtopic(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._check_chat(params.get("chat_id"))
        if chat > 0:
            raise ApiError(400, "Bad Request: the chat is not a forum")
        thread_id = next(self._message_ids[chat])
        topic = {"message_thread_id": thread_id, "name": str(params.get("name", "")),
                 "icon_color": int(params.get("icon_color") or 7322096), "closed": False}
        self.topics[chat][thread_id] = topic
        return {k: v for k, v in topic.items() if k != "closed"}

    async def _m_closeforumtopic(self, params: dict[str, Any]) -> bool:
        chat = self._check_chat(params.get("chat_id"))
        topic = self.topics.get(chat, {}).get(params.get("message_thread_id"))  # type: ignore[arg-type]
        if topic is None:
            raise ApiError(400, "Bad Request: message thread not found")
        if topic["closed"]:
            raise ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
        topic["closed"] = True
        return True

    async def _m_close(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_logout(self, params: dict[str, Any]) -> bool:
        return True
