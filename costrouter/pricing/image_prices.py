"""Prices per image by size and quality: the file's ``image_prices``, else LiteLLM's price-map variants.

LiteLLM's price map names a variant ``{quality}/{W}-x-{H}/{model}`` (or ``{W}-x-{H}/{model}``),
priced per image or per pixel. A deployment writes the same variants as ``image_prices``,
USD per image, keyed ``quality/WxH`` or ``WxH`` (``1024-x-1024`` is read too). A request
that names no size (or ``auto``) is priced at its dearest variant, and so is one that
names no quality when the table has no price for the size alone.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import litellm

from costrouter.config import price_fields as pf
from costrouter.config.image_key import ImageVariant, parse_size

__all__ = ["ImageVariant", "price_map_variants", "variant_rate"]


def _per_image(entry: Mapping[str, Any], size: tuple[int, int]) -> float | None:
    for key in (pf.INPUT_PER_IMAGE, pf.OUTPUT_PER_IMAGE):
        value = entry.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    pixel = entry.get(pf.PIXEL)
    return float(pixel) * size[0] * size[1] if isinstance(pixel, (int, float)) else None


@functools.cache
def _map_index() -> dict[str, dict[str, float]]:
    """Every price-map variant, by ``provider/model`` and by bare model name."""
    index: dict[str, dict[str, float]] = {}
    for name, entry in litellm.model_cost.items():
        parts = name.split("/")
        sizes = [i for i, part in enumerate(parts) if parse_size(part) is not None and "-x-" in part]
        if len(sizes) != 1 or not isinstance(entry, Mapping):
            continue
        at = sizes[0]
        size = parse_size(parts[at])
        model = "/".join(parts[at + 1 :])
        if size is None or not model:
            continue
        prefix = parts[:at]
        provider = prefix[0] if len(prefix) == 2 or (len(prefix) == 1 and prefix[0] in litellm.provider_list) else None
        quality = prefix[-1] if prefix and prefix[-1] != provider else ""
        price = _per_image(entry, size)
        if price is None:
            continue
        key = f"{quality}/{size[0]}x{size[1]}" if quality else f"{size[0]}x{size[1]}"
        index.setdefault(f"{provider}/{model}" if provider else model, {})[key] = price
    return index


def price_map_variants(model: str) -> dict[str, float]:
    """The price map's per-image prices of ``model`` (``openai/dall-e-3`` or ``dall-e-3``), by variant."""
    index = _map_index()
    provider, _, bare = model.rpartition("/")
    if provider and f"{provider}/{bare}" in index and provider != "openai":
        return dict(index[f"{provider}/{bare}"])
    return dict(index.get(bare, {}))


def variant_rate(rates: Mapping[str, float], quality: str | None, size: tuple[int, int] | None) -> float | None:
    """The price of one image of ``quality`` and ``size`` (the dearest that may apply when either is unknown)."""
    if not rates:
        return None
    size_key = f"{size[0]}x{size[1]}" if size is not None else None
    if quality and size_key and f"{quality}/{size_key}" in rates:
        return rates[f"{quality}/{size_key}"]
    if size_key and size_key in rates and not quality:
        return rates[size_key]
    candidates = [
        price
        for key, price in rates.items()
        if (size_key is None or key.rpartition("/")[2] == size_key)
        and (not quality or key.rpartition("/")[0] in ("", quality))
    ]
    return max(candidates) if candidates else max(rates.values())
