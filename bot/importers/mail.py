"""Migrating an existing support mailbox: .eml files, mbox files and Maildir folders, logged as contacts.

Each message goes through the same parser as live mail and the same dispatcher (threading, customers,
tickets), marked ("imported", "1") and ("no_auto_reply", "1") so nobody gets a bot answer to a mail from
last year. Its `received_at` is the mail's own Date header (the parser's default when no time is given), so
the dispatcher files it as imported history on that date: no SLA clock, nobody paged. The importer holds no
ticket rule of its own. The Message-ID is the idempotency key: importing the same archive twice changes nothing.
"""

from __future__ import annotations

import logging
import mailbox
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.messages import InboundMessage
from channels.email.parse import MailRejected, parse_mail
from channels.email.store import ContentStore

log = logging.getLogger(__name__)

IMPORT_META = (("no_auto_reply", "1"), ("imported", "1"))
EML_SUFFIXES = {".eml", ".msg", ".txt", ""}


@dataclass
class ImportSummary:
    imported: int = 0
    """New contacts logged."""
    threaded: int = 0
    """Of those, how many joined a ticket that already had messages."""
    duplicates: int = 0
    """Already logged before (same Message-ID): nothing changed."""
    rejected: list[dict[str, str]] = field(default_factory=list)
    """Messages that cannot become a contact, with the reason."""
    errors: list[dict[str, str]] = field(default_factory=list)
    """Paths that could not be read and messages the store refused, with the error."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "threaded": self.threaded,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class MailSource:
    """One message in an archive: where it is (for the summary) and how to read it."""

    label: str
    read: Callable[[], bytes]


def is_maildir(path: Path) -> bool:
    return path.is_dir() and all((path / sub).is_dir() for sub in ("cur", "new"))


def is_mbox(path: Path) -> bool:
    """An mbox starts with a "From " separator line; a single message starts with a header."""
    try:
        with path.open("rb") as fh:
            return fh.read(5) == b"From "
    except OSError:
        return False


def iter_sources(paths: list[Path], errors: list[dict[str, str]]) -> Iterator[MailSource]:
    """Every message under the given paths, in a stable order; unreadable paths go to `errors`."""
    for path in paths:
        if not path.exists():
            errors.append({"source": str(path), "error": "no such file or folder"})
        elif is_maildir(path):
            yield from _maildir(path, errors)
        elif path.is_dir():
            yield from iter_sources(sorted(path.iterdir()), errors)
        elif is_mbox(path):
            yield from _mbox(path, errors)
        elif path.suffix.lower() in EML_SUFFIXES or path.suffix.lower() == ".mbox":
            yield MailSource(str(path), path.read_bytes)


def _maildir(path: Path, errors: list[dict[str, str]]) -> Iterator[MailSource]:
    try:
        box = mailbox.Maildir(path, factory=None, create=False)
        keys = sorted(box.keys())
    except OSError as exc:
        errors.append({"source": str(path), "error": f"unreadable Maildir: {exc}"})
        return
    for key in keys:
        yield MailSource(f"{path}/{key}", lambda box=box, key=key: box.get_bytes(key))
    for name in sorted(box.list_folders()):
        yield from _maildir(path / f".{name}", errors)


def _mbox(path: Path, errors: list[dict[str, str]]) -> Iterator[MailSource]:
    try:
        box = mailbox.mbox(path, factory=None, create=False)
        keys = list(box.keys())
    except (OSError, mailbox.Error) as exc:
        errors.append({"source": str(path), "error": f"unreadable mbox: {exc}"})
        return
    for n, key in enumerate(keys, 1):
        yield MailSource(f"{path}#{n}", lambda box=box, key=key: box.get_bytes(key))


def count_messages(paths: list[Path]) -> int:
    """How many messages an import will see (for the progress bar)."""
    return sum(1 for _ in iter_sources(paths, []))


Deliver = Callable[[InboundMessage], Awaitable[Any]]
IsThreaded = Callable[[Any], Awaitable[bool]]


async def import_mail(
    paths: list[Path],
    deliver: Deliver,
    *,
    is_threaded: IsThreaded,
    store: ContentStore | None = None,
    attachment_max_bytes: int = 10_000_000,
    channel: str = "email",
    on_message: Callable[[], None] | None = None,
) -> ImportSummary:
    """Parse and deliver every message; `is_threaded(result)` tells whether a new contact joined an old ticket."""
    summary = ImportSummary()
    for source in iter_sources(paths, summary.errors):
        try:
            await _import_one(source, deliver, is_threaded, store, attachment_max_bytes, channel, summary)
        finally:
            if on_message is not None:
                on_message()
    return summary


async def _import_one(source: MailSource, deliver: Deliver, is_threaded: IsThreaded, store: ContentStore | None,
                      max_bytes: int, channel: str, summary: ImportSummary) -> None:
    try:
        raw = source.read()
    except (OSError, KeyError, mailbox.Error) as exc:
        summary.errors.append({"source": source.label, "error": f"unreadable: {exc}"})
        return
    try:
        # received_at left out on purpose: the parser takes the mail's Date header (not the moment of import)
        msg = parse_mail(raw, store=store, attachment_max_bytes=max_bytes, channel=channel, extra_meta=IMPORT_META)
    except MailRejected as exc:
        summary.rejected.append({"source": source.label, "reason": exc.reason})
        return
    try:
        result = await deliver(msg)
    except Exception as exc:  # the store refused this one; the rest of the archive still goes in
        log.warning("import of %s (%s) failed: %s", source.label, msg.external_id, exc)
        summary.errors.append({"source": source.label, "error": f"{type(exc).__name__}: {exc}"[:300]})
        return
    if getattr(result, "duplicate", False):
        summary.duplicates += 1
        return
    summary.imported += 1
    if await is_threaded(result):
        summary.threaded += 1
