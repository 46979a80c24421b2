"""A web chat visitor's file: uploaded over HTTP first (``POST /webchat/files?token=<visitor>``), kept where the web
inbox keeps its uploads (`bot.web.inbox.uploads`), then named in the visitor's next message frame by the ref this
answers. Agents get the file itself: on Telegram as a document or photo, in the web inbox as a link."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from itsdangerous import BadSignature
from starlette.datastructures import UploadFile

from bot.core.attachments import UPLOAD
from bot.tickets import TicketError
from bot.web.chat import origin_allowed
from bot.web.inbox import uploads

router = APIRouter(include_in_schema=False)


@router.post("/webchat/files")
async def visitor_file(request: Request) -> JSONResponse:
    """Keep one file for a visitor; answer its ref, name, size and type, or why not (nothing kept)."""
    ctx = request.app.state.ctx
    origin = request.headers.get("origin")
    if not origin_allowed(origin, request.headers.get("host"), ctx.settings.web.widget_origins):
        return JSONResponse({"error": "This site may not send files to the chat."}, status_code=403)
    cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}
    try:
        visitor = request.app.state.visitors.loads(request.query_params.get("token", ""))
    except BadSignature:
        visitor = None
    if not isinstance(visitor, str):
        return JSONResponse({"error": "Reconnect the chat, then attach the file again."}, 403, headers=cors)
    try:
        form = await request.form(max_files=1, max_fields=5)
    except Exception:  # a body that is no form (or too many parts): nothing is kept
        return JSONResponse({"error": "Attach one file."}, 400, headers=cors)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return JSONResponse({"error": "Attach one file."}, 400, headers=cors)
    try:
        stored = await uploads.store(ctx.settings.state_dir, upload)
    except TicketError as refused:
        return JSONResponse({"error": str(refused)}, 413 if "over" in str(refused) else 400, headers=cors)
    finally:
        await form.close()
    body = {"ref": f"{UPLOAD}:{stored.token}", "name": stored.name, "size": stored.size, "mime": stored.mime}
    return JSONResponse(body, headers=cors)
