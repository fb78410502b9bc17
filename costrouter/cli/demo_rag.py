"""The demo's retrieval step: embed documents, rerank them, then answer through the Responses API with a stream.

Every step is a routed call of its own kind (``router.embedding/…``, ``router.rerank/…``,
``router.responses/…``), priced and charged to the same session budget as the chat turns.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Mapping
from typing import Final

from costrouter.errors import BudgetExceededError
from costrouter.routing.router import CostRouter
from costrouter.testing.provider import ProviderDouble, Reply

RAG_SESSION: Final = "demo-rag-01"
RAG_USER: Final = "erin"
RAG_STEPS: Final = 3
EMBED_GROUP: Final = "embed"
RERANK_GROUP: Final = "rerank"
ANSWER_GROUP: Final = "capable"
_WHO: Final = {"session_id": RAG_SESSION, "user_id": RAG_USER}
DOCUMENTS: Final = (
    "Refunds are accepted within 30 days of delivery with the original receipt.",
    "Orders above 50 euros ship free within the European Union.",
    "Gift cards never expire and can be combined with other promotions.",
)
QUESTION: Final = "Can I return a gift card bought in May?"


def run_rag(
    router: CostRouter, provider: ProviderDouble, models: Mapping[str, str], on_turn: Callable[[str], None]
) -> tuple[int, int]:
    """Embed :data:`DOCUMENTS`, rerank them, then stream an answer; returns ``(budget errors, other errors)``.

    Rerank is async only in LiteLLM's Router: this sync step runs it on an event loop of its own.
    """
    for model in set(models.values()):
        provider.set_default(model, Reply(completion_tokens=60))
    metadata = {"app": "costrouter-demo"}
    try:
        on_turn(f"{RAG_SESSION} ({RAG_USER} → {EMBED_GROUP}: embed {len(DOCUMENTS)} documents)")
        router.route_embedding(EMBED_GROUP, input=list(DOCUMENTS), metadata=metadata, **_WHO)
        on_turn(f"{RAG_SESSION} ({RAG_USER} → {RERANK_GROUP}: rerank {len(DOCUMENTS)} documents)")
        ranked = asyncio.run(
            router.aroute_rerank(
                RERANK_GROUP, query=QUESTION, documents=list(DOCUMENTS), top_n=2, metadata=metadata, **_WHO
            )
        )
        best = [DOCUMENTS[result["index"]] for result in ranked.results or []]
        on_turn(f"{RAG_SESSION} ({RAG_USER} → {ANSWER_GROUP}: Responses API, streamed)")
        stream = router.route_response(
            ANSWER_GROUP,
            instructions="Answer from the documents only.",
            input=[{"role": "user", "content": f"{' '.join(best)}\n\n{QUESTION}"}],
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
