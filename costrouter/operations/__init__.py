"""What differs between the kinds of call a LiteLLM Router routes, one small object per kind.

An :class:`Operation` says how to check and estimate one kind of request, which Router
method serves it, and how to read usage from its response; the call flow
(:meth:`costrouter.calls.CallPlanner.call_flow`) is the same for all of them.
"""

from __future__ import annotations

from costrouter.operations.base import Operation, Reading
from costrouter.operations.chat import CHAT
from costrouter.operations.embedding import EMBEDDING
from costrouter.operations.image import IMAGE_EDIT, IMAGE_GENERATION
from costrouter.operations.messages import MESSAGES
from costrouter.operations.rerank import RERANK
from costrouter.operations.responses import RESPONSES
from costrouter.operations.speech import SPEECH
from costrouter.operations.text_completion import TEXT_COMPLETION
from costrouter.operations.transcription import TRANSCRIPTION

__all__ = [
    "CHAT",
    "EMBEDDING",
    "IMAGE_EDIT",
    "IMAGE_GENERATION",
    "MESSAGES",
    "RERANK",
    "RESPONSES",
    "SPEECH",
    "TEXT_COMPLETION",
    "TRANSCRIPTION",
    "Operation",
    "Reading",
]
