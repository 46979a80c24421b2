"""How the loopback Bot API server hands updates to the bot: long-polled getUpdates with offset confirmation, or
pushes to a webhook with the secret header, retried until it answers 2xx, as Telegram does."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from typing import Any

import aiohttp

from tests.e2e.botapi_wire import ApiError, Webhook


class UpdateQueue:
    """The updates people produced that the bot has not confirmed; `BotApiServer` sets up the state it uses."""

    _pending: deque[dict[str, Any]]
    _confirmed_below: int
    _update_ids: itertools.count
    _changed: asyncio.Condition
    _client: aiohttp.ClientSession | None
    webhook: Webhook | None
    webhook_retry_s: float

    def _notify(self) -> None:
        """Wake whoever waits for a change (the server's own)."""

    def push(self, body: dict[str, Any]) -> dict[str, Any]:
        """Queue any update body (``{"message": ...}`` or an unknown type); the update id is assigned here."""
        update = {"update_id": next(self._update_ids), **body}
        return self.redeliver(update)

    def redeliver(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update again, as Telegram does when it did not see the acknowledgement."""
        self._pending.append(update)
        self._notify()
        return update

    @property
    def unconfirmed(self) -> int:
        """Updates the bot has not confirmed yet (Telegram would send them again)."""
        return len(self._pending)

    async def _m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
                                "to delete the webhook first")
        offset = int(params.get("offset") or 0)
        if offset:
            self._confirm(offset)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        async with self._changed:
            while not self._pending and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
        return list(itertools.islice(self._pending, limit))

    def _confirm(self, offset: int) -> None:
        self._confirmed_below = max(self._confirmed_below, offset)
        while self._pending and self._pending[0]["update_id"] < offset:
            self._pending.popleft()

    async def _m_setwebhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._pending.clear()
        old = self.webhook
        self.webhook = Webhook(url=str(params["url"]), secret=str(params.get("secret_token", "")))
        if old and old.task:
            old.task.cancel()
        self._notify()
        return True

    async def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._pending.clear()
        if self.webhook and self.webhook.task:
            self.webhook.task.cancel()
        self.webhook = None
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.webhook.url if self.webhook else "", "has_custom_certificate": False,
                "pending_update_count": len(self._pending)}

    async def _push_webhook(self) -> None:
        """Deliver pending updates to the webhook one by one; a non-2xx answer means "try again later"."""
        hook = self.webhook
        assert hook is not None and self._client is not None
        while self._pending and self.webhook is hook:
            update = self._pending[0]
            headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret} if hook.secret else {}
            try:
                async with self._client.post(hook.url, json=update, headers=headers) as resp:
                    hook.responses.append(resp.status)
                    ok = 200 <= resp.status < 300
            except aiohttp.ClientError:
                hook.responses.append(0)
                ok = False
            if ok:
                if self._pending and self._pending[0] is update:
                    self._pending.popleft()
                async with self._changed:
                    self._changed.notify_all()
            else:
                await asyncio.sleep(self.webhook_retry_s)
