"""What differs between the kinds of call a LiteLLM Router routes, one small object per kind.

An :class:`Operation` says how to check and estimate one kind of request, which Router
method serves it, and how to read usage from its response; the call flow
(:meth:`costrouter.calls.CallPlanner.call_flow`) is the same for all of them.
"""

from __future__ import annotations

from costrouter.routing.operations.base import Operation, Reading
from costrouter.routing.operations.chat import CHAT
from costrouter.routing.operations.embedding import EMBEDDING
from costrouter.routing.operations.image import IMAGE_EDIT, IMAGE_GENERATION
from costrouter.routing.operations.messages import MESSAGES
from costrouter.routing.operations.rerank import RERANK
from costrouter.routing.operations.responses import RESPONSES
from costrouter.routing.operations.speech import SPEECH
from costrouter.routing.operations.text_completion import TEXT_COMPLETION
from costrouter.routing.operations.transcription import TRANSCRIPTION

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
