"""Image sizes and the keys of prices per image (``quality/WxH``): plain parsing, no LiteLLM."""

from __future__ import annotations

import re
from typing import Final

ImageVariant = tuple[str | None, tuple[int, int] | None]
"""An image's quality and ``(width, height)``, either unknown (``None``)."""

_SIZE: Final = re.compile(r"^(\d+)(?:x|-x-)(\d+)$")
LARGEST_SIZE: Final = (1792, 1024)
"""The largest image OpenAI's image models produce: the pixels a request without a size is held for."""


def parse_size(size: object) -> tuple[int, int] | None:
    """``(width, height)`` of ``"1024x1024"`` or ``"1024-x-1024"``; ``None`` for ``auto`` or nothing."""
    if not isinstance(size, str):
        return None
    match = _SIZE.match(size.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def variant_key(key: str) -> str:
    """``quality/WxH`` or ``WxH``, normalised; raises ``ValueError`` for anything else."""
    quality, _, size = key.rpartition("/")
    parsed = parse_size(size)
    if parsed is None or "/" in quality:
        raise ValueError(f"image price key {key!r} must be 'WxH' or 'quality/WxH' (e.g. 'hd/1024x1792')")
    return f"{quality}/{parsed[0]}x{parsed[1]}" if quality else f"{parsed[0]}x{parsed[1]}"
