"""Which naming convention each span attribute belongs to, so a backend preset writes only those it reads.

Without a preset a call span carries every convention (:mod:`costrouter.otel.semconv`). A preset
names the conventions its backend reads; the others are left out of its spans:

* ``costrouter``: ``router.*``, ``budget.*`` and ``llm.usage.cost_usd``, costrouter's own names
  (``costrouter report``, the tests' capture and every preset keep them);
* ``genai``: the OpenTelemetry GenAI conventions, ``gen_ai.*`` and ``server.*`` (but for the two
  names below);
* ``openinference``: ``llm.*``, ``openinference.*``, ``tag.tags`` and ``metadata``;
* ``langfuse``: ``gen_ai.usage.cost``, Langfuse's cost name (no convention has one);
* ``litellm``: ``gen_ai.cost.*``, LiteLLM's own cost names;
* ``general``: names of the general OpenTelemetry conventions several backends read
  (``session.id``, ``user.id``, ``error.type``) and every name a preset's hooks add: always written.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, Literal

from costrouter.otel import semconv as sc
from costrouter.pricing.cost import COMPONENTS

Convention = Literal["costrouter", "genai", "openinference", "langfuse", "litellm", "general"]
CONVENTIONS: Final[tuple[Convention, ...]] = ("costrouter", "genai", "openinference", "langfuse", "litellm", "general")

_COSTROUTER_PREFIXES: Final = ("router.", "budget.")
_OPENINFERENCE_PREFIXES: Final = ("llm.", "openinference.")
_GENAI_PREFIXES: Final = ("gen_ai.", "server.")


@lru_cache(maxsize=4096)
def convention_of(key: str) -> Convention:
    """The convention attribute ``key`` belongs to (``general`` for a name of none of them)."""
    if key.startswith(_COSTROUTER_PREFIXES) or key == sc.LLM_USAGE_COST_USD:
        return "costrouter"
    if key == sc.GEN_AI_USAGE_COST:
        return "langfuse"
    if key.startswith("gen_ai.cost."):
        return "litellm"
    if key.startswith(_GENAI_PREFIXES):
        return "genai"
    if key.startswith(_OPENINFERENCE_PREFIXES) or key in (sc.TAG_TAGS, sc.METADATA):
        return "openinference"
    return "general"


KNOWN_NAMES: Final = frozenset(
    value for name, value in vars(sc).items() if name.isupper() and isinstance(value, str) and not value.endswith(".")
) | {f"{sc.ROUTER_COST_PREFIX}{component}" for component in COMPONENTS}
"""Every fixed name :mod:`~costrouter.otel.semconv` holds (metric and event names too: they are never span
keys) and the cost components' ``router.cost.*`` names."""


def left_out(conventions: frozenset[Convention]) -> frozenset[str]:
    """The fixed names of the conventions not in ``conventions``: what a preset removes from a span."""
    return frozenset(key for key in KNOWN_NAMES if convention_of(key) not in conventions)


def reads(*conventions: Convention) -> frozenset[Convention]:
    """The conventions a preset writes: ``conventions`` with ``costrouter`` and ``general``."""
    return frozenset(("costrouter", "general", *conventions))
