"""Files that go with outbound messages, without servers: what a mail carries, how a web chat frame names an
upload, and how the outbox loads a row's files (from the state folder, or from the channel they came from)."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path

import pytest

from bot.core.attachments import FILES, MAX_FILE_BYTES, OutboxFiles, file_name, file_spec, keep, kept, new_token
from bot.core.messages import Attachment, DeliveryError, OutboundFile, OutboundMessage
from channels.base import ChannelRegistry
from channels.email.outbound import build_email
from channels.webchat.frames import BadFrame, parse_frame

PDF = b"%PDF-1.4 receipt\n%%EOF\n"


class FileChannel:
    """A channel that hands out files by id, counting the fetches."""

    name = "tg"

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.fetched: list[str] = []

    async def fetch_file(self, ref: str, max_bytes: int) -> bytes:
        self.fetched.append(ref)
        if ref not in self.files:
            raise DeliveryError("no such file", permanent=True)
        return self.files[ref]


def _message(specs: list[dict], channel: str = "email") -> OutboundMessage:
    return OutboundMessage(
        channel=channel,
        recipient="mei@example.org",
        text="Here it is.",
        ticket_id=3,
        meta=((FILES, json.dumps(specs)),),
    )


def test_a_mail_carries_its_files_as_attachments_after_the_text():
    message = OutboundMessage(
        channel="email",
        recipient="mei@example.org",
        text="Your invoice.",
        ticket_id=7,
        idempotency_key="k1",
        files=(OutboundFile("invoice 7.pdf", "application/pdf", PDF), OutboundFile("x.bin", "not a type", b"\x00")),
    )
    raw = build_email(message, from_address="support@desk.test").as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_body(("plain",)).get_content().strip() == "Your invoice."
    parts = [(p.get_filename(), p.get_content_type(), p.get_content()) for p in parsed.iter_attachments()]
    assert parts == [("invoice 7.pdf", "application/pdf", PDF), ("x.bin", "application/octet-stream", b"\x00")]


def test_file_names_and_specs():
    assert file_name(Attachment(kind="photo", mime="image/jpeg")) == "photo.jpg"
    assert file_name(Attachment(kind="document", name="../../etc/pass wd")) == "pass wd"
    spec = file_spec(Attachment(kind="voice", name="", mime="audio/ogg", size=9, ref="f1"), "tg", "t" * 32)
    assert spec == {
        "kind": "document",
        "name": "voice.oga",
        "mime": "audio/ogg",
        "size": 9,
        "source": "tg",
        "ref": "f1",
        "token": "t" * 32,
    }


def test_a_web_chat_frame_names_uploads_only_by_their_ref():
    ref = {"ref": "upload:" + "a" * 32, "name": "receipt.pdf", "size": 20, "mime": "application/pdf"}
    frame = parse_frame(
        json.dumps({"type": "message", "client_id": "c1", "text": "", "files": [ref]}), max_message_chars=100
    )
    assert frame.files == (ref,) and frame.text == ""
    for bad in ([dict(ref, ref="/etc/passwd")], [dict(ref, size=-1)], [dict(ref, mime="<script>")], [ref] * 6, "x"):
        with pytest.raises(BadFrame) as refused:
            parse_frame(
                json.dumps({"type": "message", "client_id": "c1", "text": "hi", "files": bad}), max_message_chars=100
            )
        assert refused.value.code == "bad_files" and refused.value.client_id == "c1"
    with pytest.raises(BadFrame, match="empty"):
        parse_frame(json.dumps({"type": "message", "client_id": "c1", "text": " ", "files": []}), max_message_chars=9)


async def test_the_outbox_fetches_a_file_once_and_keeps_it_under_the_links_token(tmp_path: Path):
    source = FileChannel({"f1": PDF})
    registry = ChannelRegistry()
    registry.add(source)
    files = OutboxFiles(registry, str(tmp_path))
    token = new_token()
    spec = file_spec(Attachment(kind="document", name="r.pdf", mime="application/pdf", ref="f1"), "tg", token)
    loaded = await files.load(_message([spec], channel="webchat"))
    assert [(f.name, f.mime, f.data) for f in loaded.files] == [("r.pdf", "application/pdf", PDF)]
    facts, path = kept(str(tmp_path), token)
    assert facts == {"name": "r.pdf", "size": len(PDF), "mime": "application/pdf"} and path.read_bytes() == PDF
    again = await files.load(_message([spec], channel="webchat"))  # a retry reads the kept copy
    assert again.files == loaded.files and source.fetched == ["f1"]
    # A row without files is passed on as it is.
    plain = OutboundMessage(channel="email", recipient="a@b.c", text="x")
    assert await files.load(plain) is plain


async def test_what_cannot_be_loaded_says_so_and_whether_to_retry(tmp_path: Path):
    source = FileChannel({"big": b"x" * (MAX_FILE_BYTES + 1)})
    registry = ChannelRegistry()
    registry.add(source)
    files = OutboxFiles(registry, str(tmp_path))

    async def failure(spec: dict) -> DeliveryError:
        with pytest.raises(DeliveryError) as failed:
            await files.load(_message([spec]))
        return failed.value

    doc = Attachment(kind="document", name="a.pdf", mime="application/pdf", ref="big")
    too_big = await failure(file_spec(doc, "tg"))
    assert too_big.permanent and "over 10 MB" in too_big.reason
    gone = await failure(file_spec(doc, "upload", new_token()))
    assert gone.permanent and "no longer kept" in gone.reason
    elsewhere = await failure(file_spec(doc, "whatsapp"))
    assert not elsewhere.permanent and "waits for the whatsapp channel" in elsewhere.reason
    missing = await failure(file_spec(Attachment(kind="document", name="b", ref="nope"), "tg"))
    assert missing.permanent


async def test_an_upload_is_sent_under_its_kept_name(tmp_path: Path):
    token = new_token()
    keep(str(tmp_path), token, "label.png", b"\x89PNG", "image/png")
    files = OutboxFiles(ChannelRegistry(), str(tmp_path))
    forged = {
        "kind": "photo",
        "name": "other.exe",
        "mime": "application/x-msdownload",
        "source": "upload",
        "ref": f"upload:{token}",
        "token": token,
    }
    [f] = (await files.load(_message([forged], channel="telegram"))).files
    assert (f.name, f.mime, f.data, f.is_photo) == ("label.png", "image/png", b"\x89PNG", True)
