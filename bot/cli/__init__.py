"""The `tierdesk` command line."""
