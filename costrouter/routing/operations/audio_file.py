"""How long an audio file can be, read before it is sent: the bound a transcription is held for.

A WAV file says its duration in its header (the ``data`` chunk's size over the ``fmt`` chunk's
byte rate). Any other format is bounded by its size at the lowest bitrate speech is plausibly
encoded at (:data:`MIN_BYTES_PER_SECOND`, 8 kbit/s), capped by the policy's
``defaults.max_audio_seconds``. The file object is left where it was.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import IO, Any, Final

MIN_BYTES_PER_SECOND: Final = 1000
"""8 kbit/s: below any codec's speech quality that providers accept, so size / this bounds the duration."""
_HEADER_BYTES: Final = 4096


@dataclass(frozen=True)
class AudioFile:
    """The first bytes of a file and its size in bytes."""

    head: bytes
    size: int


def _from_stream(stream: IO[bytes]) -> AudioFile:
    position = stream.tell()
    try:
        stream.seek(0)  # the whole file, also after the call has read it to its end
        head = stream.read(_HEADER_BYTES)
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
    finally:
        stream.seek(position)
    return AudioFile(bytes(head), size)


def read_audio_file(file: Any) -> AudioFile:
    """The head and size of ``file``: bytes, a path, a binary file object, or ``(name, content[, type])``."""
    if isinstance(file, tuple) and len(file) >= 2:
        return read_audio_file(file[1])
    if isinstance(file, (bytes, bytearray)):
        return AudioFile(bytes(file[:_HEADER_BYTES]), len(file))
    if isinstance(file, os.PathLike):
        with open(file, "rb") as stream:
            return _from_stream(stream)
    if hasattr(file, "read") and hasattr(file, "seek") and hasattr(file, "tell"):
        return _from_stream(file)
    raise TypeError(f"file must be bytes, a path, a binary file or (name, content), not {type(file).__name__}")


def wav_seconds(audio: AudioFile) -> float | None:
    """The duration a WAV header states, ``None`` when the file is not a WAV file."""
    head = audio.head
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset, byte_rate = 12, 0
    while offset + 8 <= len(head):
        chunk, size = head[offset : offset + 4], int.from_bytes(head[offset + 4 : offset + 8], "little")
        if chunk == b"fmt ":
            byte_rate = int.from_bytes(head[offset + 16 : offset + 20], "little")
        elif chunk == b"data":
            data = min(size, audio.size - offset - 8)  # a streamed WAV writes 0 or 0xFFFFFFFF here
            if size in (0, 0xFFFFFFFF):
                data = audio.size - offset - 8
            return data / byte_rate if byte_rate else None
        offset += 8 + size + (size % 2)
    return None


def audio_seconds_bound(file: Any, cap_seconds: float) -> float:
    """The most seconds ``file`` can hold: a WAV header's duration, else size at 8 kbit/s, capped."""
    audio = read_audio_file(file)
    stated = wav_seconds(audio)
    if stated is not None:
        return stated
    return min(math.ceil(audio.size / MIN_BYTES_PER_SECOND), cap_seconds)
