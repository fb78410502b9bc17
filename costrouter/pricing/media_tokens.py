"""Upper bounds of the prompt tokens of images, audio and files, without any download.

* An image is billed by the larger of two published rules: OpenAI's tiles (fit in
  2048x2048, shortest side down to 768, 85 + 170 per 512-pixel tile; ``low``
  detail 85) and Anthropic's area (long edge at most 1568 px and 1.15 Mpx, one token
  per 750 px). Its size is read from the header of a ``data:`` URL; an image behind
  a URL, or one whose header is unreadable, counts 1,600 tokens (the rules bill at
  most 1,445 and 1,534).
* Audio counts 40 tokens a second (Gemini bills 32, OpenAI's audio models about 10);
  a WAV header gives the duration, other formats are assumed to be 8 kbit/s, the
  lowest bitrate in common use, so one token per 25 bytes.
* A file or document counts one token per byte of its data (a text token is at
  least one byte; compressed PDF streams are the known exception) plus 1,600
  tokens (one image at the largest size) for every page the data declares, at least
  one; a file known only by its id counts ``unknown_file_tokens``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from typing import Final

from litellm.litellm_core_utils.token_counter import get_image_dimensions, get_image_type

_LOW_DETAIL: Final = 85
_TILE: Final = 170
_ANTHROPIC_MAX_EDGE: Final = 1568
_ANTHROPIC_MAX_PIXELS: Final = 1_150_000
_ANTHROPIC_PIXELS_PER_TOKEN: Final = 750
PAGE_IMAGE_TOKENS: Final = 1600
AUDIO_TOKENS_PER_SECOND: Final = 40
AUDIO_BYTES_PER_TOKEN: Final = 25
_PAGE: Final = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def openai_image_tokens(width: int, height: int) -> int:
    """OpenAI's high-detail tile rule for an image of ``width`` x ``height`` pixels."""
    scale = min(1.0, 2048 / max(width, height))
    fitted_width, fitted_height = width * scale, height * scale
    scale = min(1.0, 768 / min(fitted_width, fitted_height))
    tiles = math.ceil(fitted_width * scale / 512) * math.ceil(fitted_height * scale / 512)
    return _LOW_DETAIL + _TILE * tiles


def anthropic_image_tokens(width: int, height: int) -> int:
    """Anthropic's area rule, after its resize to the long-edge and pixel limits."""
    scale = min(1.0, _ANTHROPIC_MAX_EDGE / max(width, height))
    scale = min(scale, math.sqrt(_ANTHROPIC_MAX_PIXELS / (width * height * scale * scale)) * scale)
    return math.ceil(width * height * scale * scale / _ANTHROPIC_PIXELS_PER_TOKEN)


def _largest_image_tokens() -> int:
    openai = max(openai_image_tokens(w, 768) for w in range(768, 2049, 64))
    anthropic = math.ceil(_ANTHROPIC_MAX_PIXELS / _ANTHROPIC_PIXELS_PER_TOKEN)
    return max(openai, anthropic, PAGE_IMAGE_TOKENS)


UNKNOWN_IMAGE_TOKENS: Final = _largest_image_tokens()
"""What an image of unknown size can cost at most."""


def decode_data_url(url: str) -> bytes | None:
    """The bytes of a base64 ``data:`` URL, or ``None`` for any other URL."""
    if not url.startswith("data:") or "," not in url:
        return None
    header, payload = url.split(",", 1)
    if not header.endswith(";base64"):
        return payload.encode()
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None


def decode_base64(data: str) -> bytes:
    """Bare base64 (audio, file data); undecodable text counts as its own bytes."""
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return data.encode()


def image_tokens(url: str, detail: str) -> int:
    """The most an image can cost: ``low`` detail is flat, else by its size when readable."""
    if detail == "low":
        return _LOW_DETAIL
    data = decode_data_url(url)
    if data is None or get_image_type(data[:32]) is None:
        return UNKNOWN_IMAGE_TOKENS
    try:
        width, height = get_image_dimensions(url)
    except Exception:  # a truncated or corrupt header: count it as the largest image
        return UNKNOWN_IMAGE_TOKENS
    if width <= 0 or height <= 0:
        return UNKNOWN_IMAGE_TOKENS
    return max(openai_image_tokens(width, height), anthropic_image_tokens(width, height))


def _wav_seconds(data: bytes) -> float | None:
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    byte_rate = struct.unpack("<I", data[28:32])[0]
    return None if byte_rate == 0 else len(data) / byte_rate


def audio_tokens(data: str, audio_format: str) -> int:
    """The most a base64 audio clip can cost (see the module's docstring)."""
    raw = decode_base64(data)
    seconds = _wav_seconds(raw) if audio_format.lower() == "wav" else None
    if seconds is not None:
        return math.ceil(seconds * AUDIO_TOKENS_PER_SECOND) + 1
    return math.ceil(len(raw) / AUDIO_BYTES_PER_TOKEN) + 1


def file_tokens(data: bytes) -> int:
    """The most a file's data can cost: a token per byte and an image per declared page."""
    pages = max(1, len(_PAGE.findall(data)))
    return len(data) + pages * PAGE_IMAGE_TOKENS
