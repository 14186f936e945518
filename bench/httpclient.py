"""A lean HTTP/1.1 keep-alive GET client for the read benchmarks.

The load generator shares the cores with the API and the database it measures: httpx's
AsyncClient spent about 3.5 ms of CPU per call here (a quarter of a core at 80 calls/s),
taken from the server under test. This client does what the benchmarks need and no
more: one connection per client, ``GET`` with fixed headers, ``Content-Length`` or
chunked bodies, reconnect after ``Connection: close``. Latency is measured by the caller
around :meth:`get`, from the request's first byte to the answer's last.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class Answer:
    """Status, headers (lower-case names) and body of one response."""

    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = body

    def json(self) -> Any:
        return json.loads(self.content)


class KeepAliveClient:
    """GETs over one kept-alive connection to ``host:port`` (not for concurrent use)."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        lines = [f"Host: {host}:{port}", "Accept: application/json"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self._head = "\r\n".join(lines).encode() + b"\r\n\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> Answer:
        """GET ``path``. A kept-alive connection the server has closed meanwhile (its idle
        timeout) is replaced and the request sent again once, as HTTP clients do for
        idempotent requests."""
        reused = self._writer is not None
        try:
            return await self._get(path)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not reused:
                raise
            return await self._get(path)

    async def _get(self, path: str) -> Answer:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._head)
            answer = await self._read(self._reader)
        except BaseException:
            await self.close()
            raise
        if answer.headers.get("connection", "").lower() == "close":
            await self.close()
        return answer

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Answer:
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            body = b"".join(parts)
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Answer(status, headers, body)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None
