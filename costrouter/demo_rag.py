"""The demo's retrieval step: embed documents, then answer through the Responses API with a stream.

Every step is a routed call of its own kind (``router.embedding/…``, ``router.responses/…``),
priced and charged to the same session budget as the chat turns.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Final

from costrouter.errors import BudgetExceededError
from costrouter.router import CostRouter
from costrouter.testing.provider import ProviderDouble, Reply

RAG_SESSION: Final = "demo-rag-01"
RAG_USER: Final = "erin"
RAG_STEPS: Final = 2
EMBED_GROUP: Final = "embed"
ANSWER_GROUP: Final = "capable"
_WHO: Final = {"session_id": RAG_SESSION, "user_id": RAG_USER}
DOCUMENTS: Final = (
    "Refunds are accepted within 30 days of delivery with the original receipt.",
    "Orders above 50 euros ship free within the European Union.",
    "Gift cards never expire and can be combined with other promotions.",
)


def run_rag(
    router: CostRouter, provider: ProviderDouble, models: Mapping[str, str], on_turn: Callable[[str], None]
) -> tuple[int, int]:
    """Embed :data:`DOCUMENTS`, then stream an answer; returns ``(budget errors, other errors)``."""
    for model in set(models.values()):
        provider.set_default(model, Reply(completion_tokens=60))
    metadata = {"app": "costrouter-demo"}
    try:
        on_turn(f"{RAG_SESSION} ({RAG_USER} → {EMBED_GROUP}: embed {len(DOCUMENTS)} documents)")
        router.route_embedding(EMBED_GROUP, input=list(DOCUMENTS), metadata=metadata, **_WHO)
        on_turn(f"{RAG_SESSION} ({RAG_USER} → {ANSWER_GROUP}: Responses API, streamed)")
        stream = router.route_response(
            ANSWER_GROUP,
            instructions="Answer from the documents only.",
            input=[{"role": "user", "content": f"{' '.join(DOCUMENTS)}\n\nCan I return a gift card bought in May?"}],
            max_output_tokens=300,
            stream=True,
            metadata=metadata,
            **_WHO,
        )
        with warnings.catch_warnings():
            # LiteLLM 1.106 logs its own stream's usage through a pydantic model that warns about it.
            warnings.filterwarnings("ignore", message="Pydantic serializer warnings", category=UserWarning)
            for _event in stream:
                pass
    except BudgetExceededError:
        return 1, 0
    except Exception:  # LiteLLM's errors: the demo counts them and carries on, as an app would
        return 0, 1
    return 0, 0
