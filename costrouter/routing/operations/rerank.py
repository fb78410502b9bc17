"""Rerank: ``Router.arerank``; ``query`` and ``documents`` in, relevance scores out.

Priced per search unit (``input_cost_per_query``) as Cohere bills it: one query over up to
100 documents, a document longer than 500 tokens (query included) counting once per 500.
The hold counts every document's chunks with the cl100k tokenizer made an upper bound
(``unlearned_ratio x safety_factor``); the settle takes the search units the response
reports (``meta.billed_units.search_units``), else one per 100 documents. Providers that bill
tokens (``meta.tokens.input_tokens``) are priced per input token as well.
LiteLLM 1.106's Router routes rerank in async only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from costrouter.config.budgets import Defaults, PromptEstimate
from costrouter.pricing.request_checks import check_count
from costrouter.pricing.tokens import count_text_tokens
from costrouter.routing.operations.base import Operation, Reading, UsageBound

DOCUMENTS_PER_SEARCH_UNIT: Final = 100
"""Cohere: one search unit is a query over up to 100 documents."""
TOKENS_PER_CHUNK: Final = 500
"""Cohere: a document longer than this (with the query) counts as one document per chunk."""


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _document_text(document: object) -> str:
    if isinstance(document, str):
        return document
    if isinstance(document, Mapping):
        return " ".join(str(value) for value in document.values())
    raise TypeError(f"documents must be strings or mappings, not {type(document).__name__}")


def _documents(request: Mapping[str, Any]) -> list[str]:
    documents = request.get("documents")
    if not isinstance(documents, Sequence) or isinstance(documents, (str, bytes)):
        raise TypeError(f"documents must be a list of strings or mappings, not {type(documents).__name__}")
    return [_document_text(document) for document in documents]


def check_rerank(_messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> None:
    """``query`` a string, ``documents`` a list of strings or mappings, ``top_n`` a count."""
    if not isinstance(request.get("query"), str):
        raise TypeError(f"query must be a string, not {type(request.get('query')).__name__}")
    _documents(request)
    check_count("top_n", request.get("top_n"))


def rerank_bound(request: Mapping[str, Any], defaults: Defaults) -> UsageBound:
    """Search units of every document's chunks, and the tokens of each (query, document) pair."""
    settings: PromptEstimate = defaults.prompt
    factor = settings.unlearned_ratio * settings.safety_factor
    query_tokens = count_text_tokens(str(request.get("query") or ""))
    pair_tokens = [math.ceil((query_tokens + count_text_tokens(text)) * factor) for text in _documents(request)]
    chunks = sum(max(1, math.ceil(tokens / TOKENS_PER_CHUNK)) for tokens in pair_tokens)
    units = math.ceil(chunks / DOCUMENTS_PER_SEARCH_UNIT)
    return UsageBound(prompt_tokens=sum(pair_tokens), units={"search_units": Decimal(units)})


def rerank_units(request: Mapping[str, Any], response: Any) -> dict[str, Decimal]:
    """The search units the response reports, else one per 100 documents."""
    billed = _field(_field(response, "meta"), "billed_units")
    reported = _field(billed, "search_units")
    if isinstance(reported, (int, float)) and not isinstance(reported, bool):
        return {"search_units": Decimal(repr(reported))}
    return {"search_units": Decimal(math.ceil(len(_documents(request)) / DOCUMENTS_PER_SEARCH_UNIT))}


def read_rerank(response: Any) -> Reading:
    """Input tokens when the provider reports them (``meta.tokens``), no output."""
    tokens = _field(_field(response, "meta"), "tokens")
    prompt_tokens = _field(tokens, "input_tokens")
    counted = prompt_tokens if isinstance(prompt_tokens, int) else None
    return Reading(
        prompt_tokens=counted,
        completion_tokens=0 if counted is not None else None,
        usage={"prompt_tokens": counted or 0, "completion_tokens": 0},
        response_id=_field(response, "id"),
    )


RERANK = Operation(
    name="rerank",
    genai_name="rerank",
    method="rerank",
    sync_through_loop=True,
    modes=frozenset({"rerank"}),
    output_arg=None,
    check=check_rerank,
    prompt_tokens=lambda _messages, _request, _settings: 0,
    requested_output=lambda _request: 0,
    read=read_rerank,
    usage_bound=rerank_bound,
    units=rerank_units,
)
"""The rerank operation: ``aroute_rerank``."""
