"""Statements for the async PostgreSQL pool (``storage.asyncdb``), written with named
placeholders and sent with positional ones.

Apart from the pool so that modules declaring statements (keys, audit, portal reads) do
not import the driver: the CLI and the embedded stack (SQLite) never load it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


class Sql:
    """A statement written with ``%(name)s`` placeholders, as asyncpg takes it
    (``$1``, ``$2`` ... in order of first use), and its arguments from a mapping."""

    __slots__ = ("names", "text")

    def __init__(self, text: str) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.text = re.sub(r"%\((\w+)\)s", number, text)
        self.names = tuple(names)

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]
