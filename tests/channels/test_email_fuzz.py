"""Fuzzing the mail parser with malformed MIME, offline and through a real dovecot mailbox.

Every generated message must end as an `InboundMessage` (with whatever text could be recovered) or as a
`MailRejected` with a logged reason; anything else escaping is a failure. The counts printed at the end of each
test (run with -s) are the number of fuzzed messages that ran.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.messages import InboundMessage
from channels.email import EmailChannel
from channels.email.parse import MailRejected, parse_mail
from tests.e2e.mailservers import Dovecot, dovecot_fixture  # noqa: F401 (fixture "dovecot")

FUZZ_EXAMPLES = 1500
DEEP_EXAMPLES = 40
MAILBOX_EXAMPLES = 60

CHARSETS = ["utf-8", "koi8-r", "windows-1251", "gb2312", "gbk", "big5", "iso-2022-jp", "utf-7", "us-ascii",
            "iso-8859-1", "utf-16", "x-unknown", "", "bogus\"quote", "utf-8\x00", "shift_jis", "euc-kr"]
ENCODINGS = ["base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", "bogus", ""]
SUBTYPES = ["plain", "html", "rfc822-headers"]
EOLS = [b"\r\n", b"\n", b"\r"]

header_noise = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["=?utf-8?B?0J/RgNC40LLQtdGC?=", "=?koi8-r?Q?=F0=D2=C9?=", "=?bogus?X?abc?=", "=?utf-8?B?###?=",
                     "=?gb2312?B?", "=?utf-7?Q?+BB8-?=", "a\r\n b", "x\nInjected: yes", "\x00\x01", "\udcff"]),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


@st.composite
def addresses(draw) -> str:
    """Mostly a usable From (so the body gets parsed), sometimes a broken one."""
    if draw(st.integers(0, 9)) < 8:
        return draw(st.sampled_from([
            "Ann <ann@example.org>", "ann@example.org", "=?utf-8?B?0JDQvdC90LA=?= <anna@example.ru>",
            "Ann <ann@example.org>, Bob <bob@example.org>", "\"Ann, \\\"A\\\"\" <ann@example.org>",
            "=?koi8-r?Q?=E1=CE=CE=C1?= <anna@example.ru>", "Ann (comment) <ann@example.org>",
        ]))
    return draw(st.sampled_from([
        "", "undisclosed-recipients:;", "<>", "no address here", "a@b@c", "\"Quote <q@example.org>",
        "x" * 300 + "@example.org", "Ann (comment) <ann@ex.org",
    ]) | header_noise)


@st.composite
def leaf(draw) -> tuple[bytes, bytes]:
    """(part headers, part body) of a non-multipart part, often broken."""
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(ENCODINGS))
    subtype = draw(st.sampled_from(SUBTYPES))
    text = draw(st.text(max_size=80))
    codec = charset if charset in ("koi8-r", "windows-1251", "gb2312", "gbk", "big5", "utf-7") else "utf-8"
    data = text.encode(codec, errors="replace") if draw(st.booleans()) else draw(st.binary(max_size=80))
    if subtype == "html":
        data = b"<html><body><p>" + data + b"</p><blockquote>old</blockquote>" + draw(st.sampled_from([b"", b"<div"]))
    if cte == "base64":
        body = base64.encodebytes(data)
        if draw(st.booleans()):  # break it: cut, or inject garbage
            body = body[: draw(st.integers(0, len(body)))] + draw(st.sampled_from([b"", b"!!", b"=", b"===x", b"\x00"]))
    elif cte == "quoted-printable":
        body = data.replace(b"=", b"=3D") + draw(st.sampled_from([b"", b"=", b"=ZZ", b"=\r\n", b"=C"]))
    else:
        body = data
    ctype = f"text/{subtype}" if subtype != "rfc822-headers" else "text/rfc822-headers"
    params = f"; charset={charset}" if charset or draw(st.booleans()) else ""
    headers = f"Content-Type: {ctype}{params}\nContent-Transfer-Encoding: {cte}\n"
    if draw(st.booleans()):
        name = draw(st.sampled_from(["a.pdf", "=?utf-8?B?0YTQsNC50Ls=?=.txt", "\x00.bin", "", "x" * 300]))
        headers += f"Content-Disposition: attachment; filename=\"{name}\"\n"
    return headers.encode("utf-8", "surrogateescape"), body


def parts_tree(depth: int):
    if depth == 0:
        return leaf()
    return st.one_of(leaf(), multipart(depth))


@st.composite
def multipart(draw, depth: int) -> tuple[bytes, bytes]:
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "signed"]))
    declared = draw(st.sampled_from(["b1", "b2", "", "\"quoted b\"", "x" * 80]))
    used = declared.strip('"') if draw(st.integers(0, 4)) else draw(st.sampled_from(["other", "b1", ""]))
    children = draw(st.lists(parts_tree(depth - 1), max_size=3))
    body = b"preamble\n"
    for headers, content in children:
        body += b"--" + used.encode() + b"\n" + headers + draw(st.sampled_from([b"\n", b""])) + content + b"\n"
    if draw(st.booleans()):
        body += b"--" + used.encode() + b"--\n"
    params = f"; boundary={declared}" if declared else ""
    return f"Content-Type: multipart/{subtype}{params}\n".encode(), body


@st.composite
def malformed_mail(draw) -> bytes:
    headers = []
    if draw(st.integers(0, 9)):
        headers.append(("From", draw(addresses())))
    if draw(st.integers(0, 3)):
        headers.append(("Message-ID", draw(st.sampled_from(["<a@b>", "<x@y> <z@w>", "no-brackets", "", "<" + "m" * 300
                                                               + "@x>"]) | header_noise)))
    for name in draw(st.lists(st.sampled_from(["Subject", "Reply-To", "In-Reply-To", "References", "Date",
                                               "Auto-Submitted", "Precedence", "List-Id", "Return-Path",
                                               "X-Weird\x00", "Sender", "Content-Disposition"]), max_size=6)):
        headers.append((name, draw(header_noise)))
    head, body = draw(st.one_of(leaf(), multipart(2)))
    raw = b"".join(f"{n}: {v}\n".encode("utf-8", "surrogateescape") for n, v in headers)
    raw += b"MIME-Version: 1.0\n" + head + b"\n" + body
    eol = draw(st.sampled_from(EOLS))
    if eol != b"\n":
        raw = raw.replace(b"\n", eol)
    mutation = draw(st.integers(0, 5))
    if mutation == 0:  # truncated in transit
        raw = raw[: draw(st.integers(len(raw) // 3, len(raw)))]
    elif mutation == 1:  # random bytes spliced in
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=30)) + raw[at:]
    return raw


@st.composite
def deeply_nested(draw) -> bytes:
    depth = draw(st.integers(10, 150))
    kind = draw(st.sampled_from(["multipart", "rfc822", "mixed"]))
    body = b"innermost text\r\n"
    for i in range(depth):
        if kind == "rfc822" or (kind == "mixed" and i % 2):
            body = b"Content-Type: message/rfc822\r\n\r\nFrom: x@y.z\r\n" + body
        else:
            b = f"b{i}".encode()
            body = (b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n" + body
                    + (b"\r\n--" + b + b"--\r\n" if draw(st.booleans()) else b""))
    return b"From: a@b.c\r\nMessage-ID: <deep@x>\r\n" + body


class Outcomes:
    """Tally of what the parser did with each fuzzed message."""

    def __init__(self) -> None:
        self.total = 0
        self.parsed = 0
        self.rejected: Counter[str] = Counter()

    def check(self, raw: bytes, caplog: pytest.LogCaptureFixture) -> InboundMessage | None:
        self.total += 1
        caplog.clear()
        try:
            msg = parse_mail(raw)
        except MailRejected as exc:
            assert exc.reason.strip()
            assert any(exc.reason in r.getMessage() for r in caplog.records), "rejection was not logged"
            self.rejected[exc.reason.split(" (")[0].split(":")[0][:40]] += 1
            return None
        assert isinstance(msg, InboundMessage) and msg.external_id and "@" in msg.sender
        assert isinstance(msg.text, str) and "\x00" not in msg.text
        msg.text.encode("utf-8")  # storable: no lone surrogates
        self.parsed += 1
        return msg

    def report(self, label: str) -> str:
        line = f"{label}: {self.total} fuzzed messages, {self.parsed} parsed, {sum(self.rejected.values())} rejected"
        return line + (f" ({dict(self.rejected.most_common())})" if self.rejected else "")


def test_fuzz_malformed_mime(caplog: pytest.LogCaptureFixture) -> None:
    outcomes = Outcomes()

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(raw=malformed_mail())
    def run(raw: bytes) -> None:
        outcomes.check(raw, caplog)

    with caplog.at_level(logging.WARNING):
        run()
    print(outcomes.report("malformed MIME"))
    assert outcomes.total >= FUZZ_EXAMPLES * 0.9
    assert outcomes.parsed > outcomes.total / 2  # most broken mail still yields a contact


def test_fuzz_deep_nesting(caplog: pytest.LogCaptureFixture) -> None:
    outcomes = Outcomes()

    @settings(max_examples=DEEP_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(raw=deeply_nested())
    def run(raw: bytes) -> None:
        msg = outcomes.check(raw, caplog)
        assert msg is not None and msg.text == "innermost text"

    with caplog.at_level(logging.WARNING):
        run()
    print(outcomes.report("deep nesting"))
    assert outcomes.total >= DEEP_EXAMPLES * 0.9


@pytest.mark.parametrize("depth", [1000, 5000])
def test_extreme_nesting_still_gives_the_text(depth: int, caplog: pytest.LogCaptureFixture) -> None:
    body = b"innermost text\r\n"
    for i in range(depth):
        body = b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n%s\r\n--b%d--\r\n" % (i, i, body, i)
    with caplog.at_level(logging.WARNING):
        msg = Outcomes().check(b"From: a@b.c\r\nMessage-ID: <deep@x>\r\n" + body, caplog)
    assert msg is not None and msg.text == "innermost text" and msg.meta_value("mime_too_deep") == "1"


BIG = 10 * 1024 * 1024


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@b.c\r\nMessage-ID: <big1@x>\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n"
        + b"\xf0\xd2" * (BIG // 2),
        b"From: a@b.c\r\nMessage-ID: <big2@x>\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(b"<p>hello</p>" * (BIG // 12)),
        b"From: a@b.c\r\nMessage-ID: <big3@x>\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--z\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUJD" * (BIG // 4) + b"\r\n--z",
        b"From: a@b.c\r\nMessage-ID: <big4@x>\r\nSubject: " + b"=?utf-8?B?0J/RgNC40LLQtdGC?= " * 100_000 + b"\r\n\r\n"
        + b"\x00" * BIG,
    ],
    ids=["10MB-koi8", "10MB-html-base64", "10MB-attachment-unterminated", "huge-header-10MB-NULs"],
)
def test_ten_megabyte_bodies(raw: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outcomes = Outcomes()
    with caplog.at_level(logging.WARNING):
        msg = outcomes.check(raw, caplog)
    assert msg is not None
    big = msg.external_id
    # The text is kept whole (the mail's size limit bounds it), never cut.
    if big == "<big1@x>":
        assert msg.text == "Пр" * (BIG // 2)
    elif big == "<big2@x>":
        assert msg.text.split() == ["hello"] * (BIG // 12)
    elif big == "<big3@x>":
        assert msg.text == "see attached"
    else:
        assert msg.text == ""
    full = parse_mail(raw, store=EmailChannel(address="d@x.test", attachment_dir=str(tmp_path)).store,
                      attachment_max_bytes=1_000_000)
    assert Path(full.raw_ref).stat().st_size == len(raw)  # the original is kept whole
    assert all(a.ref == "" for a in full.attachments if a.size > 1_000_000)


async def test_mailbox_keeps_flowing_past_bad_mail(tmp_path: Path, dovecot: Dovecot,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    batch: list[bytes] = []

    @settings(max_examples=MAILBOX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(raw=malformed_mail())
    def collect(raw: bytes) -> None:
        batch.append(raw)

    collect()
    batch.insert(len(batch) // 2, b"From: a@b.c\r\nMessage-ID: <big@x>\r\n\r\n" + b"x" * BIG)
    batch.append(b"From: last@example.org\r\nMessage-ID: <last@example.org>\r\n\r\nthe last one\r\n")
    stored = 0
    for raw in batch:
        try:
            await dovecot.append(raw)
            stored += 1
        except AssertionError:  # dovecot refuses some bytes outright (e.g. NULs); that is the server's call
            continue
    delivered: list[InboundMessage] = []

    async def deliver(msg: InboundMessage) -> None:
        delivered.append(msg)

    ch = EmailChannel(address="support@desk.test", attachment_dir=str(tmp_path / "files"), **dovecot.settings())
    with caplog.at_level(logging.WARNING):
        await ch.start(deliver)
        try:
            for _ in range(600):
                if ch.inbox is not None and ch.inbox.delivered + ch.inbox.rejected >= stored:
                    break
                await asyncio.sleep(0.05)
        finally:
            await ch.stop()
    assert ch.inbox is not None
    print(f"mailbox: {len(batch)} fuzzed messages, {stored} accepted by dovecot, "
          f"{ch.inbox.delivered} delivered, {ch.inbox.rejected} rejected and set aside")
    assert ch.inbox.delivered + ch.inbox.rejected == stored
    assert delivered[-1].external_id == "<last@example.org>"
    inbox = await dovecot.messages()
    assert all("\\Seen" in f for _, f in inbox), "an unseen message was left behind"
    assert len(inbox) == ch.inbox.delivered
    assert len(await dovecot.messages("tierdesk-rejected")) == ch.inbox.rejected
