"""The email channel: IMAP (and an optional LMTP/SMTP listener) in, SMTP out; any real-world MIME survives.

Public surface: `EmailChannel` (the `Channel`), `parse_mail` / `MailRejected` (bytes → message, shared with the
mailbox importer) and `build_email` (message → mail).
"""

from .channel import EmailChannel
from .outbound import build_email
from .parse import MailRejected, parse_mail

__all__ = ["EmailChannel", "MailRejected", "build_email", "parse_mail"]
