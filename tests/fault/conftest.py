"""Fault tests share the private servers of services.py."""

from tests.fault.services import private_postgres, private_redis  # noqa: F401
