"""Files an agent attaches to a web reply: kept in the state folder and sent to the customer as a link (what a
web chat visitor can open). A link's token is 128 random bits, so only those who were sent it can fetch it.
Over `MAX_BYTES` is refused with the file's size, and the reply is not sent."""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.datastructures import UploadFile

from bot.core.attachments import MAX_FILE_BYTES, clean_name, describe, file_link, files_folder, kept, new_token
from bot.tickets import TicketError

MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")

router = APIRouter(include_in_schema=False)
MAX_BYTES = MAX_FILE_BYTES
CHUNK = 256 * 1024


@dataclass(frozen=True)
class Stored:
    token: str
    name: str
    size: int
    mime: str = "application/octet-stream"

    def line(self, base_url: str) -> str:
        """How the reply names the file: its name, size and link."""
        return file_link(base_url, self.token, self.name, self.size)


async def store(state_dir: str, upload: UploadFile) -> Stored:
    """Save the upload; refuse (writing nothing that stays) when it is empty or over the limit."""
    name, token = clean_name(upload.filename or ""), new_token()
    mime = upload.content_type if MIME.fullmatch(upload.content_type or "") else ""
    mime = mime or mimetypes.guess_type(name)[0] or "application/octet-stream"
    folder = files_folder(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path, size = folder / token, 0
    with path.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > MAX_BYTES:
                out.close()
                path.unlink(missing_ok=True)
                raise TicketError(f"{name} is over {MAX_BYTES // 1024 // 1024} MB; nothing was sent.", code="invalid")
            out.write(chunk)
    if size == 0:
        path.unlink(missing_ok=True)
        raise TicketError(f"{name} is empty; nothing was sent.", code="invalid")
    describe(folder, token, name, size, mime)
    return Stored(token, name, size, mime)


@router.get("/files/{token}/{name}")
async def download(token: str, name: str, request: Request) -> Response:
    """A file sent with a reply, as a download (never shown inline: it is whatever the agent attached)."""
    found = kept(request.app.state.ctx.settings.state_dir, token)
    if found is None or not found[1].is_file():
        return PlainTextResponse("No such file.", status_code=404)
    return FileResponse(found[1], filename=found[0]["name"], media_type="application/octet-stream")
