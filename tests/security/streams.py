"""A request body as the WSGI server hands it over, counting what the view reads — how the
matrices prove an oversized body is refused without being read."""

from __future__ import annotations

import io


class CountingStream:
    def __init__(self, body: bytes) -> None:
        self._stream = io.BytesIO(body)
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        line = self._stream.readline(size)
        self.bytes_read += len(line)
        return line
