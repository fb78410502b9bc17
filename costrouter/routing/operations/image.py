"""Image generation and edits: ``Router.image_generation`` / ``aimage_generation``, ``aimage_edit``.

Priced per image by size and quality (:mod:`costrouter.image_prices`: the deployment's
``image_prices``, its flat ``input_cost_per_image`` / ``output_cost_per_image``, or
``input_cost_per_pixel`` x width x height). The hold is ``n`` images of the requested size and
quality; a request without a size (or ``auto``) is held at the dearest variant and at
:data:`~costrouter.image_key.LARGEST_SIZE` pixels, one without a quality at the dearest quality
of its size. A model billed per token (``gpt-image-1``) is held for the prompt's tokens and
:data:`IMAGE_OUTPUT_TOKENS_BOUND` output tokens an image. The settle counts the images the
response holds, at the size and quality it reports (else the request's); when the response
reports token usage, the tokens are billed instead of the images, as LiteLLM does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from costrouter.config.budgets import Defaults
from costrouter.config.image_key import LARGEST_SIZE, ImageVariant, parse_size
from costrouter.pricing.request_checks import check_count
from costrouter.pricing.tokens import count_text_tokens
from costrouter.routing.operations.base import Operation, Reading, UsageBound

IMAGE_OUTPUT_TOKENS_BOUND: Final = 6240
"""The most output tokens one image costs (gpt-image-1, high quality, 1536x1024, by OpenAI's table)."""


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def check_image(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> None:
    """``prompt`` a string, ``n`` a count, ``size`` ``WxH`` or ``auto``."""
    if not isinstance(request.get("prompt"), str):
        raise TypeError(f"prompt must be a string, not {type(request.get('prompt')).__name__}")
    check_count("n", request.get("n"))
    size = request.get("size")
    if size is not None and size != "auto" and parse_size(size) is None:
        raise ValueError(f"size must be 'WxH' (e.g. '1024x1024') or 'auto', not {size!r}")


def _variant(quality: object, size: object) -> ImageVariant:
    return (_text(quality), parse_size(size))


def image_bound(request: Mapping[str, Any], defaults: Defaults) -> UsageBound:
    """``n`` images of the requested (else the dearest) variant, their pixels, the tokens of a token-priced model."""
    count = check_count("n", request.get("n")) or 1
    variant = _variant(request.get("quality"), request.get("size"))
    width, height = variant[1] or LARGEST_SIZE
    settings = defaults.prompt
    prompt_tokens = math.ceil(
        count_text_tokens(str(request.get("prompt") or "")) * settings.unlearned_ratio * settings.safety_factor
    )
    return UsageBound(
        prompt_tokens=prompt_tokens,
        output_tokens=count * IMAGE_OUTPUT_TOKENS_BOUND,
        units={"images": Decimal(count), "pixels": Decimal(count * width * height)},
        variant=variant,
    )


def image_variant(request: Mapping[str, Any], response: Any) -> ImageVariant:
    """The size and quality the response reports, else the request's."""
    return _variant(
        _field(response, "quality") or request.get("quality"), _field(response, "size") or request.get("size")
    )


def _token_usage(response: Any) -> Any:
    """The response's token usage, ``None`` when it reports none (LiteLLM fills in a zero block)."""
    usage = _field(response, "usage")
    return usage if (_field(usage, "input_tokens") or _field(usage, "output_tokens")) else None


def image_units(request: Mapping[str, Any], response: Any) -> dict[str, Decimal]:
    """The images the response holds and their pixels; none when it reports tokens (billed instead)."""
    if _token_usage(response) is not None:
        return {}
    data = _field(response, "data")
    count = len(data) if isinstance(data, list) else (check_count("n", request.get("n")) or 1)
    width, height = image_variant(request, response)[1] or LARGEST_SIZE
    return {"images": Decimal(count), "pixels": Decimal(count * width * height)}


def read_image(response: Any) -> Reading:
    """Token usage when the model reports it (output tokens are image tokens)."""
    usage = _token_usage(response)
    if usage is None:
        return Reading(prompt_tokens=None, completion_tokens=None, usage=None)
    prompt, completion = int(_field(usage, "input_tokens") or 0), int(_field(usage, "output_tokens") or 0)
    details = _field(usage, "input_tokens_details")
    chat_usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_tokens_details": {
            "text_tokens": int(_field(details, "text_tokens") or 0),
            "image_tokens": int(_field(details, "image_tokens") or 0),
        },
        "completion_tokens_details": {"image_tokens": completion},
    }
    return Reading(prompt_tokens=prompt, completion_tokens=completion, usage=chat_usage)


_COMMON: Final[dict[str, Any]] = {
    "modes": frozenset({"image_generation"}),
    "output_arg": None,
    "check": check_image,
    "prompt_tokens": lambda _messages, _request, _settings: 0,
    "requested_output": lambda _request: 0,
    "read": read_image,
    "usage_bound": image_bound,
    "units": image_units,
    "variant": image_variant,
}

IMAGE_GENERATION = Operation(
    name="image_generation", genai_name="image_generation", method="image_generation", **_COMMON
)
"""The image-generation operation: ``route_image`` / ``aroute_image``."""
IMAGE_EDIT = Operation(
    name="image_edit",
    genai_name="image_edit",
    method="image_edit",
    sync_through_loop=True,
    metadata_arg="litellm_metadata",  # LiteLLM's generic route reads the model group from it
    **_COMMON,
)
"""The image-edit operation: ``aroute_image_edit`` (``image=`` and ``prompt=``)."""
