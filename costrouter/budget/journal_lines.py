"""Journal lines read as untrusted input: bounded in length and nesting, numbers checked.

A journal file may be a dead process's, torn by a crash, cut by a full disk, or
written by anything that can write the directory. Each line is read at most
:data:`MAX_LINE_BYTES` at a time (a longer one is skipped to its end, never held in
memory), checked for nesting deeper than :data:`MAX_LINE_DEPTH` before ``json`` sees
it (``json.loads`` recurses once per level: ``[`` × 100,000 raised ``RecursionError``
and stopped every router of the store), and decoded without ``NaN`` or ``Infinity``.
A bad line raises :class:`JournalLineError`; the reader names it and goes on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

MAX_LINE_BYTES: Final = 64 * 1024
"""The longest journal line read; an entry is about 600 bytes (ids are bounded far below this)."""
MAX_LINE_DEPTH: Final = 8
"""The deepest nesting of a journal line read; an entry nests 3 levels (its budget's ``alert_at``)."""


class JournalLineError(ValueError):
    """A journal line that is not an entry: too long, nested too deep, not JSON, or a bad field."""


def read_lines(path: Path) -> Iterator[tuple[int, bytes | None, bool]]:
    """``(line number, bytes or None when too long, ended by a newline)`` of each line of ``path``."""
    with path.open("rb") as file:
        number = 0
        while raw := file.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
                yield number, raw, raw.endswith(b"\n")
                continue
            ended = False
            while chunk := file.readline(MAX_LINE_BYTES):
                if chunk.endswith(b"\n"):
                    ended = True
                    break
            yield number, None, ended


def decode_line(raw: bytes | None) -> dict[str, Any]:
    """The JSON object of one line; :class:`JournalLineError` for anything else."""
    if raw is None:
        raise JournalLineError(f"longer than {MAX_LINE_BYTES} bytes")
    if raw.count(b"[") + raw.count(b"{") > MAX_LINE_DEPTH and nesting(raw) > MAX_LINE_DEPTH:
        raise JournalLineError(f"nested deeper than {MAX_LINE_DEPTH} levels")
    try:
        line = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise JournalLineError(f"not JSON ({exc})") from None
    if not isinstance(line, dict):
        raise JournalLineError(f"not a JSON object but {type(line).__name__}")
    return line


def nesting(raw: bytes) -> int:
    """The deepest nesting of brackets and braces in ``raw``, outside JSON strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise JournalLineError(f"{name} is not a number a journal holds")


def text(value: Any, field: str) -> str:
    """A string field of an entry."""
    if not isinstance(value, str):
        raise JournalLineError(f"{field} must be a string, not {type(value).__name__}")
    return value


def integer(value: Any, field: str, top: int) -> int:
    """An integer field of an entry, within ``0..top``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise JournalLineError(f"{field} must be an integer, not {_shown(value)}")
    if not 0 <= value <= top:
        raise JournalLineError(f"{field} {_shown(value)} is outside 0..{top}")
    return int(value)


def real(value: Any, field: str) -> float:
    """A finite number field of an entry."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JournalLineError(f"{field} must be a number, not {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise JournalLineError(f"{field} must be a finite number, not {_shown(value)}")
    return number


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else f"{shown[:37]}..."
