"""Our own errors, so callers never depend on driver exceptions."""


class StoreError(Exception):
    pass


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    pass


class StoreUnavailable(StoreError):
    """The database refused or could not be reached; the caller may retry."""
