"""Fiddler: OTLP/HTTP at ``{FIDDLER_URL}/v1/traces``, traces only.

Read against docs.fiddler.ai/integrations/agentic-ai/otel-trace-export, /attributes and
/litellm-integration: headers ``authorization: Bearer`` and ``fiddler-application-id``, resource
``application.id``; the span type from ``fiddler.span.type`` (``llm`` / ``chain`` / ``tool`` /
``agent``); ``gen_ai.usage.*``, ``gen_ai.request.model``, ``gen_ai.system`` on LLM spans;
conversations from ``gen_ai.conversation.id``; any other attribute is kept only as
``fiddler.span.user.<key>``. Fiddler documents no cost attribute, so the cost goes out as the
custom attribute ``fiddler.span.user.cost_usd`` (a number Fiddler keeps and can chart). The preset
writes the GenAI names and no OpenInference or LiteLLM ones.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.util.types import AttributeValue

from costrouter.otel import semconv as sc
from costrouter.otel.backends.base import Attributes, Backend, bearer, combine, from_env
from costrouter.otel.conventions import reads

SPAN_TYPE: Final = "fiddler.span.type"
USER_PREFIX: Final = "fiddler.span.user."


def _who(attributes: Attributes) -> dict[str, AttributeValue]:
    names = {sc.SESSION_ID: "session_id", sc.USER_ID: "user_id", sc.ROUTER_GROUP: "model_group"}
    return {f"{USER_PREFIX}{key}": attributes[name] for name, key in names.items() if name in attributes}


def llm_span(attributes: Attributes) -> dict[str, AttributeValue]:
    """Type ``llm``; the cost and the session as Fiddler's custom attributes."""
    out: dict[str, AttributeValue] = {SPAN_TYPE: "llm", **_who(attributes)}
    if sc.LLM_USAGE_COST_USD in attributes:
        out[f"{USER_PREFIX}cost_usd"] = attributes[sc.LLM_USAGE_COST_USD]
    return out


def step_span(attributes: Attributes) -> dict[str, AttributeValue]:
    """Type ``chain`` and the session."""
    return {SPAN_TYPE: "chain", **_who(attributes)}


FIDDLER = Backend(
    "fiddler",
    base_env="FIDDLER_URL",
    paths={"traces": "/v1/traces"},
    headers=combine(bearer("FIDDLER_API_KEY"), from_env({"fiddler-application-id": "FIDDLER_APPLICATION_ID"})),
    resource=from_env({"application.id": "FIDDLER_APPLICATION_ID"}),
    llm_span=llm_span,
    step_span=step_span,
    conventions=reads("genai"),
)
"""``FIDDLER_URL``, ``FIDDLER_API_KEY`` (Bearer), ``FIDDLER_APPLICATION_ID`` (header and resource)."""
