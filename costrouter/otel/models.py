"""What a span says about the model behind a deployment: its name, provider and server.

The routed call's span names the real model a deployment calls (not the group alias), the
provider by the GenAI conventions' well-known values, and the server it talks to. These
facts are fixed by the router file, so they are computed once per deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from costrouter.config.groups import Deployment, RouterConfig

# LiteLLM's provider names -> the GenAI conventions' well-known ``gen_ai.provider.name`` values
# (semantic-conventions-genai, registry ``gen_ai.provider.name``). Others pass through unchanged.
_WELL_KNOWN_PROVIDERS = {
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "deepseek": "deepseek",
    "gemini": "gcp.gemini",
    "groq": "groq",
    "mistral": "mistral_ai",
    "openai": "openai",
    "perplexity": "perplexity",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "watsonx": "ibm.watsonx.ai",
    "xai": "x_ai",
}


def provider_name(litellm_provider: str) -> str:
    """``gen_ai.provider.name`` for a LiteLLM provider name (its well-known value when one exists)."""
    return _WELL_KNOWN_PROVIDERS.get(litellm_provider, litellm_provider)


def model_name(litellm_model: str) -> str:
    """The model a deployment asks its provider for: the LiteLLM model without its provider prefix.

    ``openai/gpt-4o-mini`` -> ``gpt-4o-mini``; ``openrouter/anthropic/claude-3`` -> ``anthropic/claude-3``.
    """
    return litellm_model.split("/", 1)[1] if "/" in litellm_model else litellm_model


@dataclass(frozen=True)
class ModelFacts:
    """The model, provider and server of one deployment, as spans and metrics name them."""

    model: str
    provider: str | None = None
    server_address: str | None = None
    server_port: int | None = None


def model_facts(deployment: Deployment, litellm_provider: str | None) -> ModelFacts:
    """The facts of ``deployment``; the server only when the file sets its ``api_base``."""
    address: str | None = None
    port: int | None = None
    if deployment.api_base:
        parts = urlsplit(deployment.api_base)
        address = parts.hostname
        try:
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
        except ValueError:  # a malformed port in api_base: say nothing rather than something wrong
            port = None
    return ModelFacts(
        model=deployment.model_name or model_name(deployment.model),
        provider=provider_name(litellm_provider) if litellm_provider else None,
        server_address=address,
        server_port=port,
    )


def primary_deployment_id(config: RouterConfig, group: str) -> str:
    """The id of the deployment that serves ``group`` first (lowest priority, file order on ties)."""
    ranked = [
        (deployment.priority, index, deployment_id)
        for index, (name, deployment_id, deployment) in enumerate(config.deployments())
        if name == group
    ]
    return min(ranked)[2]
