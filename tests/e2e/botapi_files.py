"""Files on the loopback Bot API server: people's files can be fetched by the bot (``getFile`` and the download
under ``/file/bot<token>/<path>``), and the bot uploads files (``sendDocument``, ``sendPhoto`` as multipart), as
the real API does. Tests put the bytes behind a file id (`put_file`) and read what the bot uploaded
(`uploads_to`)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.e2e.botapi_media import MediaBotApiServer
from tests.e2e.botapi_server import BOT_USER, ApiError


@dataclass
class Upload:
    """A file the bot sent: which method, its name, type and bytes, and the message Telegram made of it."""

    method: str
    name: str
    mime: str
    data: bytes
    message: dict[str, Any]


class FileBotApiServer(MediaBotApiServer):
    """`MediaBotApiServer` with getFile, file downloads and file uploads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.files: dict[str, bytes] = {}
        self.uploads: list[Upload] = []
        self.downloads: list[str] = []
        self._file_ids = itertools.count(1)

    client_max_size = 32 * 1024 * 1024

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._download)
        super()._routes(app)

    def put_file(self, file_id: str, data: bytes) -> None:
        """The bytes behind a file id a person sends (`media_message`)."""
        self.files[file_id] = data

    def file_message(
        self,
        user: dict[str, Any],
        kind: str,
        data: bytes,
        *,
        file_name: str = "",
        mime_type: str = "",
        caption: str = "",
        size: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A person sends a photo or document with these bytes behind it (`size`: what Telegram reports, for a
        file too big to make); returns the update."""
        file_id = f"{kind}-{next(self._file_ids)}"
        self.files[file_id] = data
        media: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(data) if size is None else size,
        }
        if kind == "photo":
            fields: dict[str, Any] = {
                "photo": [dict(media, width=90, height=90, file_size=1), dict(media, width=1280, height=960)]
            }
        else:
            media.update({k: v for k, v in (("file_name", file_name), ("mime_type", mime_type)) if v})
            fields = {kind: media}
        if caption:
            fields["caption"] = caption
        return self.push({"message": self.new_message(user, **kwargs, **fields)})

    def uploads_to(self, chat_id: int) -> list[Upload]:
        return [u for u in self.uploads if u.message["chat"]["id"] == int(chat_id)]

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        path = request.match_info["path"]
        file_id = path.rpartition("/")[2]
        self.downloads.append(file_id)
        if file_id not in self.files:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def _m_getfile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        data = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(data),
            "file_path": f"documents/{file_id}",
        }

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params = await super()._params(request)
        if request.content_type.startswith("multipart/"):
            for key, value in (await request.post()).items():  # aiohttp keeps the parsed form
                if isinstance(value, web.FileField):
                    params[key] = value
        return params

    async def _m_senddocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._uploaded("sendDocument", "document", params)

    async def _m_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._uploaded("sendPhoto", "photo", params)

    def _uploaded(self, method: str, field: str, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._check_chat(params.get("chat_id"))
        upload = params.get(field)
        if isinstance(upload, str) and upload.startswith("attach://"):  # how clients name a multipart file
            upload = params.get(upload.removeprefix("attach://"))
        if not isinstance(upload, web.FileField):
            raise ApiError(400, f"Bad Request: there is no {field} in the request")
        data = upload.file.read()
        if not data:
            raise ApiError(400, "Bad Request: file must be non-empty")
        self._check_flood(chat)
        file_id = f"up-{next(self._file_ids)}"
        self.files[file_id] = data
        media: dict[str, Any] = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(data)}
        if field == "document":
            media.update(file_name=upload.filename, mime_type=upload.content_type)
        message_id = next(self._message_ids[chat])
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": BOT_USER,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
            field: [dict(media, width=640, height=480)] if field == "photo" else media,
        }
        if params.get("caption"):
            message["caption"] = params["caption"]
        self.messages[chat][message_id] = message
        self.uploads.append(Upload(method, upload.filename, upload.content_type, data, message))
        return message
