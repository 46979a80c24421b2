"""Telegram channel (filled in below)."""
