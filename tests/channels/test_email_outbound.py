"""Outbound mail: the headers that keep threads together and robots quiet."""

from __future__ import annotations

import email
from email import policy

import pytest

from bot.core.messages import Button, OutboundMessage
from channels.email.outbound import BadOutboundMail, build_email, subject_for
from channels.email.parse import parse_mail


def out(**kw) -> OutboundMessage:
    base = {"channel": "email", "recipient": "ann@example.org", "text": "Hello Ann"}
    base.update(kw)
    return OutboundMessage(**base)


def test_reply_threads_and_is_tagged() -> None:
    msg = out(
        subject="Re: Damaged parcel [#T-17]",
        reply_to="<c2@mail.example.org>",
        ticket_id=17,
        meta=(("references", "<c1@mail.example.org> <td.x@desk.test>"), ("author", "agent")),
    )
    mail = build_email(msg, from_address="support@desk.test", from_name="Example Support")
    assert mail["From"] == "Example Support <support@desk.test>"
    assert mail["To"] == "ann@example.org"
    assert mail["Subject"] == "Re: Damaged parcel [#T-17]"
    assert mail["In-Reply-To"] == "<c2@mail.example.org>"
    assert mail["References"] == "<c1@mail.example.org> <td.x@desk.test> <c2@mail.example.org>"
    assert mail["Message-ID"].endswith("@desk.test>")
    assert mail["Auto-Submitted"] is None  # a person wrote it
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().strip() == "Hello Ann"


def test_bot_answer_is_auto_submitted_and_id_is_stable_per_outbox_entry() -> None:
    msg = out(meta=(("author", "bot"),), idempotency_key="outbox-42", ticket_id=5)
    first = build_email(msg, from_address="support@desk.test")
    second = build_email(msg, from_address="support@desk.test")
    assert first["Auto-Submitted"] == "auto-replied"
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"] != build_email(out(idempotency_key="outbox-43"), from_address="a@desk.test")[
        "Message-ID"
    ]


def test_subject_gets_the_tag_when_missing() -> None:
    assert subject_for(out(ticket_id=9)) == "Your request [#T-9]"
    assert subject_for(out(ticket_id=9, subject="Re: Refund")) == "Re: Refund [#T-9]"
    assert subject_for(out(ticket_id=9, subject="Re: Refund [#T-9]")) == "Re: Refund [#T-9]"
    assert subject_for(out(subject="two\r\nlines")) == "two lines"


def test_buttons_become_a_numbered_list_and_unicode_survives() -> None:
    msg = out(text="Выберите:", buttons=(Button("Да", "y"), Button("Нет", "n")))
    mail = build_email(msg, from_address="support@desk.test")
    parsed = email.message_from_bytes(mail.as_bytes(), policy=policy.default)
    assert parsed.get_content().strip() == "Выберите:\n\n1. Да\n2. Нет"


def test_what_we_send_parses_back_with_our_threading() -> None:
    msg = out(reply_to="<c2@x>", meta=(("references", "<c1@x>"),), subject="Re: hi")
    mail = build_email(msg, from_address="support@desk.test")
    back = parse_mail(mail.as_bytes())
    assert back.external_id == mail["Message-ID"]
    assert back.thread_ref == "<c2@x> <c1@x>"


@pytest.mark.parametrize("recipient", ["", "nobody", "a@b@c", "x@y\r\nBcc: evil@z"])
def test_bad_recipient_is_refused(recipient: str) -> None:
    with pytest.raises(BadOutboundMail):
        build_email(out(recipient=recipient), from_address="support@desk.test")


def test_missing_desk_address_is_refused() -> None:
    with pytest.raises(BadOutboundMail):
        build_email(out(), from_address="")
