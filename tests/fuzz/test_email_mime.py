"""Mail bytes into the MIME parser: every generated or mutated message becomes a storable `InboundMessage` or a
`MailRejected` with its reason logged; nothing else escapes and the parser never logs a traceback of its own."""

from __future__ import annotations

from hypothesis import given

from channels.email.parse import MailRejected, parse_mail
from tests.fuzz.mail_messages import mail
from tests.fuzz.nasty import FUZZ_EXAMPLES, batches, fuzz_settings, recording
from tests.fuzz.test_telegram_updates import assert_storable


def test_generated_mail_is_parsed_or_rejected_with_a_logged_reason():
    counts = {"parsed": 0, "rejected": 0}

    @fuzz_settings()
    @given(batches(mail))
    def parse(messages):
        for raw in messages:
            with recording("channels.email") as log:
                try:
                    msg = parse_mail(raw)
                except MailRejected as rejected:
                    counts["rejected"] += 1
                    assert rejected.reason
                    assert any(r.getMessage().startswith("email rejected") for r in log.records)
                else:
                    counts["parsed"] += 1
                    assert_storable(msg)
            assert log.tracebacks() == [], log.tracebacks()[:1]

    parse()
    print(f"email MIME: {sum(counts.values())} generated: {counts}")
    assert sum(counts.values()) >= FUZZ_EXAMPLES
    assert counts["parsed"] >= 3000 and counts["rejected"] >= 100, counts
