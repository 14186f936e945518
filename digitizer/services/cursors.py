"""Opaque keyset cursors over (created_at, id): stable pages while rows are added."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from digitizer.errors import InvalidRequestError


def encode(created_at: datetime, row_id: str) -> str:
    """The cursor of the page that follows the row (``created_at``, ``row_id``)."""
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor points after.

    Raises:
        InvalidRequestError: not a cursor this service returned.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, row_id = json.loads(raw)
        when = datetime.fromisoformat(created)
        if not isinstance(row_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidRequestError("the cursor is not one this service returned") from exc
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), row_id
