"""The MIME corpus: hand-written samples of what real mail looks like, and what the parser must make of each."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from channels.email.decode import decode_bytes
from channels.email.parse import MailRejected, hashed_message_id, parse_mail
from channels.email.quotes import strip_quotes_and_signature
from channels.email.store import ContentStore

MIME = Path(__file__).parent / "mime"


def load(name: str) -> bytes:
    return (MIME / name).read_bytes()


# file, expected sender, expected text (exact, after quote stripping), expected subject
CHARSETS = [
    ("koi8r.eml", "ivan.petrov@example.org", "Здравствуйте! Заказ 4512 не доставлен, помогите пожалуйста.",
     "Заказ не доставлен"),
    ("windows1251.eml", "customer@example.org", "Добрый день. Прошу вернуть деньги за подписку.", "Возврат денег"),
    ("gb2312.eml", "wang@example.cn", "你好，我的订单还没有收到，请帮忙查询。", "订单查询"),
    ("gbk.eml", "customer@example.org", "张喆：发票抬头写错了，需要重新开具。", "发票问题 喆"),
    ("big5.eml", "customer@example.org", "您好，我想更改送貨地址，謝謝。", "更改地址"),
    ("iso2022jp.eml", "customer@example.org", "こんにちは。注文した商品がまだ届いていません。", "注文について"),
    ("utf7.eml", "customer@example.org", "Привет, 你好 — the invoice total is wrong (€42).", "Invoice счета"),
    ("rfc2047_subject.eml", "jose@example.org", "Plain body.", "Ärger mit der Lieferung überall [#T-17]"),
    ("raw8bit_header.eml", "customer@example.org", "Оплата не прошла.", "Проблема с оплатой"),
    ("wrong_charset.eml", "customer@example.org",
     "Café crème — déjà vu: the label says ascii, the bytes are UTF-8.", "Wrong charset"),
    ("missing_charset.eml", "customer@example.org", "Grüße aus Köln", "No charset"),
]


@pytest.mark.parametrize(("name", "sender", "text", "subject"), CHARSETS, ids=[c[0] for c in CHARSETS])
def test_charsets_and_encoded_headers(name: str, sender: str, text: str, subject: str) -> None:
    msg = parse_mail(load(name))
    assert msg.channel == "email"
    assert msg.sender == sender
    assert msg.text == text
    assert msg.meta_value("subject") == subject
    assert msg.meta_value("no_auto_reply") == ""


def test_sender_name_from_encoded_words() -> None:
    assert parse_mail(load("koi8r.eml")).sender_name == "Иван Петров"
    assert parse_mail(load("gb2312.eml")).sender_name == "王小明"
    assert parse_mail(load("rfc2047_subject.eml")).sender_name == "José Müller"


def test_unknown_charset_still_gives_text() -> None:
    msg = parse_mail(load("unknown_charset.eml"))
    # Undetectable without a declared charset we know: cp1252 keeps every byte visible, nothing is lost.
    assert msg.text == "Счёт не пришёл".encode("cp1251").decode("cp1252")


def test_html_only_converted_and_quote_dropped() -> None:
    msg = parse_mail(load("html_only.eml"))
    assert "my parcel arrived damaged & the box was wet" in msg.text
    assert "alert(1)" not in msg.text and "color: red" not in msg.text
    assert "Your parcel has shipped" not in msg.text
    assert msg.meta_value("quotes_stripped") == "1"


def test_empty_plain_alternative_falls_back_to_html() -> None:
    assert parse_mail(load("alternative_empty_plain.eml")).text == "Can I change my tariff?"


def test_quoted_reply_and_signature_stripped_threading_kept() -> None:
    msg = parse_mail(load("quoted_reply.eml"))
    assert msg.text == "Thanks, the replacement is fine for me.\nPlease ship it to the same address."
    assert msg.thread_ref == "<out-17@tierdesk.test> <first-1@mail.example.org>"
    assert msg.meta_value("subject") == "Re: Damaged parcel [#T-17]"


def test_outlook_reply_header_block_stripped() -> None:
    msg = parse_mail(load("outlook_reply.eml"))
    assert msg.text == "The PO number is 99-1234."
    assert msg.thread_ref == "<out-18@tierdesk.test>"


def test_attachments_metadata_and_content_by_reference(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "files")
    msg = parse_mail(load("attachments.eml"), store=store)
    assert msg.text == "Please find the signed contract attached."
    pdf, png = msg.attachments
    assert (pdf.name, pdf.mime, pdf.kind, pdf.size) == ("contract.pdf", "application/pdf", "file", 1040)
    assert ContentStore.get(pdf.ref).startswith(b"%PDF-1.4")
    assert (png.name, png.mime, png.kind) == ("фото.png", "image/png", "photo")
    assert ContentStore.get(png.ref)[:4] == b"\x89PNG"
    # The full original is kept, byte for byte.
    assert ContentStore.get(msg.raw_ref) == load("attachments.eml")


def test_attachment_over_the_limit_is_metadata_only(tmp_path: Path) -> None:
    msg = parse_mail(load("attachments.eml"), store=ContentStore(tmp_path), attachment_max_bytes=100)
    pdf, png = msg.attachments
    assert pdf.size == 1040 and pdf.ref == ""
    assert png.ref != ""
    assert msg.meta_value("attachments_not_stored") == "1"


@pytest.mark.parametrize(
    ("name", "bounce_of", "status"),
    [
        ("dsn_bounce.eml", "<out-17@tierdesk.test>", "5.1.1"),
        ("dsn_headers_only.eml", "<out-21@tierdesk.test>", "5.2.1"),
        ("old_style_bounce.eml", "<out-33@tierdesk.test>", ""),
    ],
)
def test_bounces_name_the_bounced_message(name: str, bounce_of: str, status: str) -> None:
    msg = parse_mail(load(name))
    assert msg.meta_value("bounce_of") == bounce_of
    assert msg.meta_value("bounce_status") == status
    assert msg.meta_value("no_auto_reply") == "1"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("out_of_office.eml", "auto-submitted: auto-replied"),
        ("mailing_list.eml", "precedence: list"),
        ("dsn_headers_only.eml", "delivery or read report"),
        ("old_style_bounce.eml", "empty return-path"),
    ],
)
def test_rfc3834_no_auto_reply(name: str, reason: str) -> None:
    msg = parse_mail(load(name))
    assert msg.meta_value("no_auto_reply") == "1"
    assert msg.meta_value("no_auto_reply_reason") == reason


def test_list_header_alone_suppresses_answers() -> None:
    raw = b"From: a@example.org\r\nList-Unsubscribe: <mailto:x@example.org>\r\nMessage-ID: <l@x>\r\n\r\nhi\r\n"
    assert parse_mail(raw).meta_value("no_auto_reply_reason") == "mailing list (list-unsubscribe)"


def test_auto_submitted_no_is_a_person() -> None:
    raw = b"From: a@example.org\r\nAuto-Submitted: no\r\nMessage-ID: <p@x>\r\n\r\nhi\r\n"
    assert parse_mail(raw).meta_value("no_auto_reply") == ""


def test_message_without_id_gets_a_stable_hash() -> None:
    raw = load("no_message_id.eml")
    first, second = parse_mail(raw), parse_mail(raw)
    assert first.external_id == second.external_id == hashed_message_id(raw)
    assert first.external_id != parse_mail(raw + b"\nmore\n").external_id


def test_message_id_normalised() -> None:
    raw = b"From: a@example.org\r\nMessage-ID:   bare-id@host  \r\n\r\nhi\r\n"
    assert parse_mail(raw).external_id == "<bare-id@host>"
    raw = b"From: a@example.org\r\nMessage-ID: <x@h> (comment)\r\n\r\nhi\r\n"
    assert parse_mail(raw).external_id == "<x@h>"


def test_reply_to_stands_in_only_when_from_has_no_address() -> None:
    msg = parse_mail(load("reply_to_only.eml"))
    assert msg.sender == "real.person@example.org"
    raw = b"From: Ann <ann@example.org>\r\nReply-To: desk@example.org\r\nMessage-ID: <r@x>\r\n\r\nhi\r\n"
    msg = parse_mail(raw)
    assert (msg.sender, msg.meta_value("reply_to")) == ("ann@example.org", "desk@example.org")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"   \r\n\r\n", "empty message"),
        (b"Subject: nobody wrote this\r\n\r\nbody\r\n", "no sender address"),
        (b"From: not an address\r\n\r\nbody\r\n", "no sender address"),
    ],
)
def test_rejections_carry_a_logged_reason(raw: bytes, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(MailRejected) as info:
        parse_mail(raw)
    assert info.value.reason.startswith(reason)
    assert any(reason in r.getMessage() for r in caplog.records)


def test_date_header_is_received_at_unless_absurd() -> None:
    msg = parse_mail(load("koi8r.eml"))
    assert msg.received_at.isoformat() == "2025-03-03T10:00:00+03:00"
    future = b"From: a@example.org\r\nDate: Mon, 03 Mar 2200 10:00:00 +0000\r\nMessage-ID: <f@x>\r\n\r\nhi\r\n"
    assert parse_mail(future).received_at.year < 2200


def test_decode_fallback_chain() -> None:
    assert decode_bytes("привет".encode("koi8-r"), "koi8-r") == ("привет", "koi8-r")
    assert decode_bytes("привет".encode(), "koi8-r") == ("привет", "utf-8")  # mislabelled UTF-8 wins
    assert decode_bytes(b"caf\xe9", None) == ("caf\xe9", "cp1252")
    text, codec = decode_bytes(b"\x81\x8d", None)
    assert codec == "cp1252+replace" and "\ufffd" in text


def test_strip_keeps_a_text_that_is_all_quote() -> None:
    text = "> only a quote\n> nothing new"
    assert strip_quotes_and_signature(text) == (text, False)
