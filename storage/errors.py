"""Errors of the storage adapters."""

from __future__ import annotations


class StorageError(Exception):
    """Base of storage errors."""


class ObjectStoreUnavailableError(StorageError):
    """The S3 server cannot be reached or refused the request: transient."""


class ObjectNotFoundError(StorageError):
    """No object has this key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object {key}")
        self.key = key


class DatabaseUnavailableError(StorageError):
    """The metadata database cannot be reached: transient."""
