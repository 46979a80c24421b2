"""The message pipeline: the shared message types, the dispatcher, conversations, the outbox and its worker."""
