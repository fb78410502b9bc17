"""Arize Phoenix: register each model's prices as a Phoenix custom model (GraphQL).

Phoenix ignores ``llm.cost.*`` on incoming spans and prices each LLM span itself: it finds
the model whose ``namePattern`` matches the span's ``llm.model_name`` (custom models before
built-in ones) and multiplies the span's token counts by that model's token prices
(``phoenix/server/cost_tracking/cost_model_lookup.py``, ``cost_details_calculator.py``).
A custom model per model name, with costrouter's prices, makes Phoenix's cost costrouter's.
Phoenix applies a model to spans ingested after it is written, not to older ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel

from costrouter.config import price_fields as pf
from costrouter.errors import PushError
from costrouter.money import per_million
from costrouter.prices_push.plan import Change, ModelPrice, PushPlan, unchanged_or
from costrouter.prices_push.transport import DEFAULT_TIMEOUT_SECONDS, excerpt, exchange, json_answer, where

__all__ = ["API_KEY_ENV", "PhoenixTarget", "PushError", "name_pattern", "phoenix_rates", "unpushable"]

API_KEY_ENV: Final = "PHOENIX_API_KEY"
"""Phoenix's API key, when its authentication is on (sent as a bearer token)."""

# LiteLLM price name -> Phoenix (kind, token type). Phoenix falls back to ``input`` for prompt
# token types it has no price for and to ``output`` for completion ones.
_TOKEN_TYPES: Final = {
    pf.INPUT: ("PROMPT", "input"),
    pf.CACHE_READ: ("PROMPT", "cache_read"),
    pf.CACHE_CREATION: ("PROMPT", "cache_write"),
    pf.INPUT_AUDIO: ("PROMPT", "audio"),
    pf.INPUT_IMAGE: ("PROMPT", "image"),
    pf.OUTPUT: ("COMPLETION", "output"),
    pf.REASONING: ("COMPLETION", "reasoning"),
    pf.OUTPUT_AUDIO: ("COMPLETION", "audio"),
    pf.OUTPUT_IMAGE: ("COMPLETION", "image"),
}

_LIST = """
query { generativeModels(first: 100000) { edges { node {
  id name namePattern kind tokenPrices { tokenType kind costPerToken }
} } } }
"""
_CREATE = """
mutation($input: CreateModelMutationInput!) { createModel(input: $input) { model { id } } }
"""
_UPDATE = """
mutation($input: UpdateModelMutationInput!) { updateModel(input: $input) { model { id } } }
"""


def phoenix_rates(rates: Mapping[str, float]) -> dict[str, float]:
    """Costrouter's rates as Phoenix token prices, keyed ``prompt.input``, ``completion.output``, ..."""
    return {
        f"{kind.lower()}.{token_type}": value
        for key, (kind, token_type) in _TOKEN_TYPES.items()
        if (value := rates.get(key)) is not None
    }


def unpushable(price: ModelPrice) -> list[str]:
    """Prices Phoenix has no field for: its cost differs from costrouter's on calls that pay them.

    One-hour cache writes count as Phoenix's ``cache_write``, so only a different price is lost.
    """
    rates = price.rates
    return sorted(
        key
        for key, value in rates.items()
        if key not in _TOKEN_TYPES
        and value
        and not (key == pf.CACHE_CREATION_1H and value == rates.get(pf.CACHE_CREATION))
    )


def name_pattern(model: str) -> str:
    """The pattern that matches exactly ``model`` as a span's ``llm.model_name``."""
    return f"^{re.escape(model)}$"


def _token_price(key: str, per_token: float) -> dict[str, Any]:
    kind, token_type = key.split(".", 1)
    return {"tokenType": token_type, "kind": kind.upper(), "costPerMillionTokens": per_million(per_token)}


class _TokenPrice(BaseModel):
    tokenType: str  # noqa: N815 - Phoenix's GraphQL names
    kind: str
    costPerToken: float  # noqa: N815


class _Model(BaseModel):
    id: str
    name: str
    namePattern: str  # noqa: N815
    kind: str
    tokenPrices: list[_TokenPrice]  # noqa: N815


def custom_models(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Phoenix's custom models by name from a ``generativeModels`` answer.

    ``KeyError``, ``TypeError`` or ``ValueError`` when a field this push reads is missing or of another type.
    """
    models: dict[str, dict[str, Any]] = {}
    for edge in data["generativeModels"]["edges"]:
        node = _Model.model_validate(edge["node"])
        if node.kind != "BUILT_IN":
            models[node.name] = node.model_dump()
    return models


class PhoenixTarget:
    """Reads and writes a Phoenix server's custom models over its GraphQL API."""

    name = "phoenix"

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.url = url.rstrip("/")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = timeout

    def close(self) -> None:
        """Nothing held open between requests."""

    def _graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        payload = {"query": query, "variables": dict(variables or {})}
        answer = exchange(
            "phoenix", self.url, "POST", "/graphql", payload=payload, headers=self._headers, timeout=self.timeout
        )
        if answer.status != 200:
            raise PushError(f"{where('phoenix', self.url)}: HTTP {answer.status}: {excerpt(answer.body)!r}")
        body = json_answer("phoenix", self.url, answer)
        if not isinstance(body, dict):
            raise self._shape("an object")
        errors = body.get("errors")
        if errors:
            listed = errors if isinstance(errors, list) else [errors]
            messages = "; ".join(
                excerpt(str(error.get("message") if isinstance(error, dict) else error).encode()) for error in listed
            )
            raise PushError(f"{where('phoenix', self.url)}: {messages}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise self._shape("an object with 'data'")
        return data

    def _shape(self, expected: str) -> PushError:
        return PushError(f"{where('phoenix', self.url)}: the GraphQL answer is not {expected}; is this Phoenix?")

    def _custom_models(self) -> dict[str, dict[str, Any]]:
        try:
            return custom_models(self._graphql(_LIST))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._shape("generativeModels.edges[].node with name, kind, id, namePattern, tokenPrices") from None

    def plan(self, prices: list[ModelPrice], plan: PushPlan) -> None:
        """Add a change per model to ``plan``: create, update or unchanged, from what Phoenix holds."""
        existing = self._custom_models()
        for price in prices:
            plan.notes.extend(
                f"{price.model}: Phoenix has no price for {key}; its cost differs on calls that pay it"
                for key in unpushable(price)
            )
            after = phoenix_rates(price.rates)
            node = existing.get(price.model)
            if node is None:
                plan.changes.append(Change("create", price.model, None, after))
                continue
            before = {f"{p['kind'].lower()}.{p['tokenType']}": float(p["costPerToken"]) for p in node["tokenPrices"]}
            if node["namePattern"] != name_pattern(price.model):
                plan.changes.append(Change("update", price.model, before, after))
            else:
                plan.changes.append(unchanged_or("update", price.model, before, after))

    def apply(self, plan: PushPlan) -> None:
        """Write every pending change of ``plan``."""
        existing = self._custom_models()
        for change in plan.pending:
            costs = [_token_price(key, value) for key, value in sorted(change.after.items())]
            fields = {"name": change.model, "provider": None, "namePattern": name_pattern(change.model), "costs": costs}
            if change.action == "create":
                self._graphql(_CREATE, {"input": fields})
            else:
                self._graphql(_UPDATE, {"input": {"id": existing[change.model]["id"], **fields}})
