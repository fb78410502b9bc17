"""Lines of a span file, each read at most :data:`MAX_LINE_BYTES` at a time.

A span file is read as untrusted input: a line longer than the limit (a file written by
something else, or by nothing sane) is passed over in pieces and reported as a
:class:`LongLine`, never held in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

__all__ = ["MAX_LINE_BYTES", "LongLine", "bounded_lines", "skip_line"]

MAX_LINE_BYTES: Final = 64 << 20
"""The longest span-file line a report reads (64 MiB): a batch of 512 spans of the file exporter
is a few MiB (about 6 KiB a span of the demo's shape)."""


@dataclass(frozen=True)
class LongLine:
    """A line longer than the limit, passed over: only its length (newline included) is known."""

    length: int


def skip_line(handle: BinaryIO, limit: int = MAX_LINE_BYTES) -> int:
    """Read to the end of the current line, ``limit`` bytes at a time; the number of bytes passed."""
    passed = 0
    while chunk := handle.readline(limit):
        passed += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return passed


def bounded_lines(handle: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[bytes | LongLine]:
    """Each line of ``handle`` from where it stands: its bytes, or a :class:`LongLine` past ``limit``."""
    while line := handle.readline(limit + 1):
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
        else:
            yield LongLine(len(line) + skip_line(handle, limit))
