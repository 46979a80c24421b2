"""The email channel: IMAP (and an optional SMTP/LMTP listener) in, SMTP out; any real-world MIME survives."""
