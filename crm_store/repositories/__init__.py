"""Repositories: every query of ours. Each takes an `AsyncSession`, never commits, and raises our errors."""
