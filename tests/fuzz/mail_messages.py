"""Mail for fuzzing: real messages (tests/channels/mime) with bytes spliced in, cut out or overwritten, headers
repeated or blown up, and messages generated part by part (tests/channels/test_email_fuzz)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

from tests.channels.test_email_fuzz import malformed_mail
from tests.fuzz.nasty import MEGABYTE, one_of_values

CORPUS = [p.read_bytes() for p in sorted((Path(__file__).parent.parent / "channels" / "mime").glob("*.eml"))]
SIMPLE = (b"From: Mei <mei@example.com>\r\nTo: desk@example.org\r\nSubject: order\r\nMessage-ID: <m1@example.com>\r\n"
          b"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWhere is it?\r\n")
DEEP = b"From: a@example.com\r\n" + b"".join(
    f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n".encode() for i in range(300)) + b"deep\r\n"
NASTY_BYTES = [
    b"\x00", b"\x00\x00\x00\x00", b"\xff\xfe\xfd", b"\xed\xa0\x80", b"\xc0\x80", b"\r\n\r\n", b"\r", b"\n\n",
    b"--b1\r\n", b"--b1--\r\n", b"Content-Type: multipart/mixed; boundary=b1\r\n",
    b"Content-Type: text/plain; charset=\"utf-8\x00\"\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"=?utf-8?B?AA==?=", b"=?x-unknown?Q?=FF?=",
    b"=?utf-8?B?" + b"7aCA" * 50 + b"?=", b"From: \x00@example.com\r\n", b"From: =?utf-8?B?7aCA?= <a\x00@b.c>\r\n",
    b"Message-ID: <\x00\xff@x>\r\n", b"Message-ID: <" + b"m" * 300 + b"@x>\r\n",
    b"Date: Tue, 1 Dec 99999999999 99:99:99 +9999\r\n", b"Date: 0\r\n", b"\t folded continuation\r\n",
    b"Content-Disposition: attachment; filename*=utf-8''%ED%A0%80%00.txt\r\n", b"begin 644 x\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
]
BIG_BYTES = [
    b"References: " + b"<a@b> " * 5000 + b"\r\n", b"Subject: " + b"=?utf-8?q?a?= " * 20000 + b"\r\n",
    b"X-Long: " + MEGABYTE.encode() + b"\r\n", MEGABYTE.encode(), DEEP, b"<html><script>" + b"<b>" * 5000,
]
"""Slow to parse (that is their point): drawn about once in 150 mutations."""


@st.composite
def mutated_mail(draw: st.DrawFn) -> bytes:
    raw = CORPUS[draw(st.integers(0, len(CORPUS) - 1))] if draw(st.integers(0, 4)) else SIMPLE
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        op = draw(st.integers(0, 4))
        big = draw(st.integers(0, 150)) == 0
        chunk = draw(one_of_values(BIG_BYTES) if big else one_of_values(NASTY_BYTES) | st.binary(max_size=20))
        if op == 0:  # spliced in
            raw = raw[:at] + chunk + raw[at:]
        elif op == 1:  # cut out
            raw = raw[:at] + raw[at + draw(st.integers(1, 200)):]
        elif op == 2:  # overwritten
            raw = raw[:at] + chunk + raw[at + len(chunk):]
        elif op == 3:  # a header added on top
            raw = chunk.rstrip(b"\r\n") + b"\r\n" + raw
        else:  # cut in transit
            raw = raw[:at]
    return raw


mail = (mutated_mail() | mutated_mail() | mutated_mail() | malformed_mail()
        | one_of_values([SIMPLE, DEEP, b"", b"\x00" * 1000, b"From: a@b.c\r\n"]))
"""The bytes of one mail as a mailbox, an importer or the SMTP listener hands them over."""
