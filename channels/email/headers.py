"""Header access that survives broken mail: message ids, addresses, dates, RFC 2047 and raw 8-bit text."""

from __future__ import annotations

import email
import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime

from .decode import decode_rfc2047, fix_header_text
from .mimeparts import iter_parts

log = logging.getLogger(__name__)

MAX_THREAD_IDS = 50
MSGID = re.compile(r"<([^<>\s]{1,250})>")
_ADDR = re.compile(r"^[^@\s<>\"]{1,200}@[^@\s<>\"]{1,200}$")


def hashed_message_id(raw: bytes) -> str:
    """A stable stand-in Message-ID for mail that has none."""
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.invalid>"


def normalise_msgid(value: str) -> str:
    """`<id@host>` from whatever a header holds ("id@host", " <id@host> (comment)"); empty when none."""
    match = MSGID.search(value or "")
    if match:
        return f"<{match.group(1)}>"
    value = (value or "").strip()
    if value and " " not in value and len(value) <= 250 and "<" not in value and ">" not in value:
        return f"<{value}>"
    return ""


MAX_HEADER_CHARS = 16_000
"""A header longer than this is cut before it is parsed: the modern header parser is superlinear in time and
memory (a 3 MB subject of encoded words takes gigabytes), and no real header is that long."""


def bound_header_sizes(msg: Message) -> int:
    """Cut oversized raw header values in every part, before anything parses them; returns how many were cut."""
    cut = 0
    for part in iter_parts(msg, 1000):
        items = list(part.raw_items())
        long_names = {name for name, value in items if len(value) > MAX_HEADER_CHARS}
        for name in long_names:
            values = [value for n, value in items if n == name]
            del part[name]
            for value in values:
                if len(value) > MAX_HEADER_CHARS:
                    value = value[:MAX_HEADER_CHARS]
                    cut += 1
                part.set_raw(name, value)
    return cut


def load_message(raw: bytes) -> tuple[Message, bool]:
    """The parsed message and whether only its headers could be parsed.

    policy.default first; compat32 if that raises; headers only when the MIME tree is too deep for the parser's
    recursion (hostile mail nests thousands of levels).
    """
    msg, headers_only = _load(raw)
    if bound_header_sizes(msg):
        log.info("oversized headers cut before parsing")
    return msg, headers_only


MAX_MULTIPARTS = 100
_BOUNDARY = re.compile(rb"boundary\s*=", re.I)
"""More multipart boundaries than this and only the headers are parsed: the stdlib parser checks every line
against every open boundary, which is quadratic in the nesting (1,000 levels take seconds)."""


def _load(raw: bytes) -> tuple[Message, bool]:
    if sum(1 for _ in zip(_BOUNDARY.finditer(raw), range(MAX_MULTIPARTS + 1), strict=False)) > MAX_MULTIPARTS:
        log.info("more than %d multiparts; parsing headers only", MAX_MULTIPARTS)
        return BytesHeaderParser(policy=policy.compat32).parsebytes(raw), True
    try:
        return email.message_from_bytes(raw, policy=policy.default), False
    except RecursionError:
        log.info("MIME too deep; parsing headers only")
    except Exception as exc:
        log.info("policy.default parse failed (%s); using compat32", exc)
        try:
            return email.message_from_bytes(raw, policy=policy.compat32), False
        except RecursionError:
            log.info("MIME too deep; parsing headers only")
    return BytesHeaderParser(policy=policy.compat32).parsebytes(raw), True


class MailHeaders:
    """Header access that survives the header parser's own bugs: policy.default first, raw decoding second."""

    def __init__(self, msg: Message, raw: bytes) -> None:
        self.msg = msg
        self.raw = raw
        self.charset = first_charset(msg)

    def text(self, name: str) -> str:
        try:
            value = self.msg.get(name)
            value = "" if value is None else str(value)
            value = fix_header_text(value, self.charset)
        except Exception:
            try:
                value = decode_rfc2047(str(self.msg.get_all(name, [""])[0] or ""), self.charset)
            except Exception:
                value = ""
        return " ".join(value.split())

    def addresses(self, name: str) -> list[tuple[str, str]]:
        try:
            values = [str(v) for v in self.msg.get_all(name, [])]
        except Exception:
            values = []
        if not values:
            return []
        decoded = [fix_header_text(decode_rfc2047(v, self.charset), self.charset) for v in values]
        try:
            pairs = getaddresses(decoded)
        except Exception:
            pairs = []
        out = []
        for name_, addr in pairs:
            addr = addr.strip().strip("<>").lower()
            if _ADDR.match(addr):
                out.append((" ".join(name_.split()), addr))
        return out

    def first_address(self, name: str) -> str:
        found = self.addresses(name)
        return found[0][1] if found else ""

    def sender(self) -> tuple[str, str]:
        for name in ("From", "Reply-To", "Sender", "Return-Path"):
            found = self.addresses(name)
            if found:
                return found[0][1], found[0][0] if name == "From" else ""
        return "", ""

    def message_id(self) -> str:
        return normalise_msgid(self.text("Message-ID"))

    def raw_values(self, name: str) -> list[str]:
        """A header's values as they came, unparsed: message ids are read from them by a regex directly, as the
        modern header parser is slow on long ones (a 16,000-character References took 40 ms to parse)."""
        try:
            return [str(v) for n, v in self.msg.raw_items() if n.lower() == name.lower()]
        except Exception:
            return []

    def thread_ids(self) -> list[str]:
        seen: list[str] = []
        for name in ("In-Reply-To", "References"):
            for match in MSGID.finditer(" ".join(self.raw_values(name))):
                mid = f"<{match.group(1)}>"
                if mid not in seen:
                    seen.append(mid)
        return seen[:MAX_THREAD_IDS]

    def date(self) -> datetime:
        now = datetime.now(UTC)
        try:
            when = parsedate_to_datetime(self.text("Date"))
        except Exception:
            return now
        if when is None:
            return now
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        # A date far in the future is a broken clock; it must not sort above every real contact.
        return now if when > now + timedelta(days=1) or when.year < 1980 else when


def first_charset(msg: Message) -> str | None:
    try:
        for part in iter_parts(msg):
            charset = part.get_content_charset()
            if charset:
                return charset
    except Exception:
        return None
    return None
