"""Audio transcription: ``Router.atranscription``; an audio ``file`` in, text out.

No upper bound is knowable before the call from the request alone; the hold follows a rule
(:mod:`costrouter.operations.audio_file`): the seconds a WAV header states, else the file's
size at 8 kbit/s capped by ``defaults.max_audio_seconds``. A model priced per second
(``input_cost_per_second``) is held for those seconds; a model priced per token
(gpt-4o-transcribe) for :data:`AUDIO_TOKENS_PER_SECOND` input and :data:`TEXT_TOKENS_PER_SECOND`
output tokens a second. The settle takes the duration the response reports (``duration`` of
``verbose_json``, ``usage.seconds``, LiteLLM's measured duration), else a WAV header's, and the
tokens a ``usage`` of type ``tokens`` reports. LiteLLM 1.106's Router transcribes in async only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from costrouter.config.budgets import Defaults
from costrouter.pricing.fields import hidden_params
from costrouter.routing.operations.audio_file import audio_seconds_bound, read_audio_file, wav_seconds
from costrouter.routing.operations.base import Operation, Reading, UsageBound

AUDIO_TOKENS_PER_SECOND: Final = 20
"""Input tokens a second of audio is held for (OpenAI bills about 10: one per 100 ms)."""
TEXT_TOKENS_PER_SECOND: Final = 10
"""Output tokens a second of speech is held for (speech runs about 3 words, 4 tokens, a second)."""


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def check_transcription(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> None:
    """``file``: bytes, a path, a binary file object or ``(name, content)``."""
    read_audio_file(request.get("file"))


def transcription_bound(request: Mapping[str, Any], defaults: Defaults) -> UsageBound:
    """The seconds the file can hold (the documented rule) and the tokens of that many seconds."""
    seconds = audio_seconds_bound(request.get("file"), defaults.max_audio_seconds)
    return UsageBound(
        prompt_tokens=math.ceil(seconds * AUDIO_TOKENS_PER_SECOND),
        output_tokens=math.ceil(seconds * TEXT_TOKENS_PER_SECOND),
        units={"audio_seconds": Decimal(repr(seconds))},
    )


def transcription_units(request: Mapping[str, Any], response: Any) -> dict[str, Decimal]:
    """The duration the response reports, else LiteLLM's measured one, else a WAV header's.

    None when the response reports tokens: LiteLLM then bills the tokens, not the seconds.
    """
    usage = _field(response, "usage")
    if _field(usage, "type") == "tokens":
        return {}
    hidden = hidden_params(response) or {}
    candidates = (
        _field(response, "duration"),
        _field(usage, "seconds") if _field(usage, "type") == "duration" else None,
        hidden.get("audio_transcription_duration"),
    )
    for candidate in candidates:
        seconds = _number(candidate)
        if seconds is not None:
            return {"audio_seconds": Decimal(repr(seconds))}
    stated = wav_seconds(read_audio_file(request.get("file")))
    return {"audio_seconds": Decimal(repr(stated))} if stated is not None else {}


def read_transcription(response: Any) -> Reading:
    """Tokens when the usage is of type ``tokens`` (audio input billed as audio tokens)."""
    usage = _field(response, "usage")
    text = _field(response, "text")
    if _field(usage, "type") != "tokens":
        return Reading(prompt_tokens=None, completion_tokens=None, usage=None, output_text=text)
    prompt, completion = int(_field(usage, "input_tokens") or 0), int(_field(usage, "output_tokens") or 0)
    details = _field(usage, "input_token_details")
    chat_usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_tokens_details": {
            "audio_tokens": int(_field(details, "audio_tokens") or 0),
            "text_tokens": int(_field(details, "text_tokens") or 0),
        },
    }
    return Reading(prompt_tokens=prompt, completion_tokens=completion, usage=chat_usage, output_text=text)


TRANSCRIPTION = Operation(
    name="transcription",
    genai_name="transcription",
    method="transcription",
    sync_through_loop=True,
    modes=frozenset({"audio_transcription"}),
    output_arg=None,
    check=check_transcription,
    prompt_tokens=lambda _messages, _request, _settings: 0,
    requested_output=lambda _request: 0,
    read=read_transcription,
    usage_bound=transcription_bound,
    units=transcription_units,
)
"""The transcription operation: ``aroute_transcription``."""
