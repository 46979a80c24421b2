"""Media on the loopback Bot API server: people send photos, documents, voice notes and stickers (by file id, as
Telegram delivers them), and the bot copies messages between chats (``copyMessage``), as the real API does: the
copy keeps the media and the caption unless another caption is given."""

from __future__ import annotations

from typing import Any

from tests.e2e.botapi_server import BOT_USER, ApiError, BotApiServer

MEDIA_KEYS = ("photo", "document", "voice", "audio", "video", "sticker", "animation", "video_note")


class MediaBotApiServer(BotApiServer):
    """`BotApiServer` with media messages and ``copyMessage``."""

    def media_message(
        self,
        user: dict[str, Any],
        kind: str,
        file_id: str,
        *,
        file_name: str = "",
        file_size: int = 0,
        caption: str = "",
        emoji: str = "",
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A person sends a photo, document, voice note or sticker; returns the update."""
        media: dict[str, Any] = {"file_id": file_id, "file_unique_id": f"u-{file_id}"}
        if file_size:
            media["file_size"] = file_size
        if kind == "photo":
            fields: dict[str, Any] = {
                "photo": [
                    dict(media, width=90, height=90, file_size=max(file_size // 10, 1)),
                    dict(media, width=1280, height=960),
                ]
            }
        else:
            if file_name:
                media["file_name"] = file_name
            if emoji:
                media["emoji"] = emoji
            fields = {kind: media}
        if caption:
            fields["caption"] = caption
        return self.push({"message": self.new_message(user, **kwargs, **fields)})

    def copies_to(self, chat_id: int) -> list[dict[str, Any]]:
        """Messages the bot copied into a chat, in order (each with the media of its source)."""
        return [
            c.result["message"]
            for c in self.calls_of("copyMessage")
            if c.status == 200 and c.result["message"]["chat"]["id"] == int(chat_id)
        ]

    async def _m_copymessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._check_chat(params.get("chat_id"))
        try:
            source = self.messages[int(params.get("from_chat_id", 0))][int(params.get("message_id", 0))]
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Bad Request: message to copy not found") from None
        self._check_markup(params.get("reply_markup"))
        message_id = next(self._message_ids[chat])
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": BOT_USER,
            "date": source["date"],
            "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
        }
        message.update({k: source[k] for k in (*MEDIA_KEYS, "caption", "text") if k in source})
        if params.get("caption") is not None:
            message["caption"] = params["caption"]
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[chat][message_id] = message
        # The result of copyMessage is only the new id; the copy is kept beside it for `copies_to`.
        return {"message_id": message_id, "message": message}
