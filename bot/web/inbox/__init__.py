"""The agent inbox on the web: queue counts and "my tickets", ticket forms that are safe to post twice, canned
responses, and live updates (server-sent events) with who else is looking at a ticket."""
