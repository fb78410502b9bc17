"""Every span attribute, event and metric name costrouter writes, in one place.

No OpenTelemetry convention exists for cost yet, so one span carries the names each
backend reads: the OpenTelemetry GenAI conventions (SigNoz, Datadog, Langfuse,
Honeycomb), OpenInference (Phoenix, Arize), LiteLLM's own cost names (Fiddler) and
costrouter's ``router.*`` / ``budget.*`` names. The README's attribute table lists them.
"""

from __future__ import annotations

from typing import Final

# ---- costrouter: the routed call -------------------------------------------------------
SPAN_NAME_PREFIX: Final = "router.completion"
"""Parent span name: ``router.completion/{model_group}``."""
CALL_SPAN_PREFIX: Final = "router."
"""Parent spans of every kind: ``router.<operation>/{model_group}``."""
CALL_OPERATIONS: Final = (
    "completion",
    "embedding",
    "responses",
    "text_completion",
    "messages",
    "rerank",
    "transcription",
    "speech",
    "image_generation",
    "image_edit",
)
"""The ``<operation>`` of parent span names (:mod:`costrouter.operations`)."""
CALL_SPAN_NAME_PREFIXES: Final = tuple(f"{CALL_SPAN_PREFIX}{name}/" for name in CALL_OPERATIONS)
"""Prefixes that make a span a routed call's parent (``str.startswith`` takes the tuple)."""
ATTEMPT_SPAN_NAME_PREFIX: Final = "router.attempt"
"""Child span per attempt: ``router.attempt/{deployment_id}``."""

ROUTER_GROUP: Final = "router.group"
"""The model group (alias) the caller asked for; on attempt spans, the attempt's group."""
ROUTER_MODEL_GROUP: Final = "router.model_group"
"""Deprecated old name of ``router.group``, still written for one release (remove after 0.x+1)."""
ROUTER_SERVED_GROUP: Final = "router.served_model_group"
"""The model group that answered (differs after a fallback or a budget downgrade)."""
ROUTER_MESSAGE_COUNT: Final = "router.message_count"
ROUTER_ATTEMPTS: Final = "router.attempts"
"""Provider requests made for this routed call (first try + retries + fallbacks)."""
ROUTER_RETRIES: Final = "router.retries"
ROUTER_FALLBACKS: Final = "router.fallbacks"
ROUTER_DEPLOYMENT_ID: Final = "router.deployment_id"
"""The deployment that answered (its ``id`` in the router YAML)."""
ROUTER_STREAM: Final = "router.stream"
ROUTER_STREAM_OUTCOME: Final = "router.stream.outcome"
"""``completed`` | ``closed_early`` | ``failed``."""
ROUTER_CALL_ID: Final = "router.call_id"
ROUTER_TAGS: Final = "router.tags"
ROUTER_METADATA_PREFIX: Final = "router.metadata."
ROUTER_USAGE_SOURCE: Final = "router.usage.source"
"""``reported``: usage from the response or the stream's final usage chunk (the provider's,
or LiteLLM's own count when the provider sent none); ``counted``: a stream that ended before
its usage chunk (closed early, cut), whose tokens costrouter counted itself; ``estimated``: a
call cancelled, interrupted or timed out after a provider received it, or whose answer
failed a plausibility check (``router.usage.implausible``), charged its hold."""
ROUTER_USAGE_IMPLAUSIBLE: Final = "router.usage.implausible"
"""The figures of an answer that failed a plausibility check (``completion_tokens``, ``cost`` …):
the call was charged its hold, and its token counts are held at their bounds. See ``docs/budgets.md``."""

ATTEMPT_INDEX: Final = "router.attempt.index"
ATTEMPT_KIND: Final = "router.attempt.kind"
"""``first`` | ``retry`` | ``fallback``."""
ATTEMPT_OUTCOME: Final = "router.attempt.outcome"
"""``success`` | ``failure``."""
ATTEMPT_MODEL: Final = "router.attempt.model"
"""The model the attempt's deployment called; attempt spans are steps, never model calls,
so they carry no ``gen_ai.request.model``."""
ATTEMPT_WAIT_MS: Final = "router.attempt.wait_ms"
"""Milliseconds between the end of the previous attempt and the start of this one."""

# ---- cost ------------------------------------------------------------------------------
LLM_USAGE_COST_USD: Final = "llm.usage.cost_usd"
"""costrouter's cost name: the routed call's actual cost in USD (deployment prices)."""
LLM_COST_TOTAL: Final = "llm.cost.total"
LLM_COST_PROMPT: Final = "llm.cost.prompt"
LLM_COST_COMPLETION: Final = "llm.cost.completion"
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"
"""Langfuse maps it to the generation's cost."""
GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
"""Proposed GenAI convention (semantic-conventions-genai PR #443, not merged): the call's cost."""
GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
"""Proposed (PR #443): ISO 4217 code of ``gen_ai.usage.cost.amount``; always ``USD`` here."""
GEN_AI_USAGE_COST_SOURCE: Final = "gen_ai.usage.cost.source"
"""Proposed (PR #443): ``provider`` (the amount the response carried) or ``local`` (computed)."""
GEN_AI_COST_TOTAL: Final = "gen_ai.cost.total_cost"
GEN_AI_COST_PROMPT: Final = "gen_ai.cost.prompt_cost"
GEN_AI_COST_COMPLETION: Final = "gen_ai.cost.completion_cost"

LLM_COST_PROMPT_INPUT: Final = "llm.cost.prompt_details.input"
"""OpenInference: uncached text prompt tokens, USD."""
LLM_COST_PROMPT_CACHE_READ: Final = "llm.cost.prompt_details.cache_read"
LLM_COST_PROMPT_CACHE_WRITE: Final = "llm.cost.prompt_details.cache_write"
LLM_COST_PROMPT_AUDIO: Final = "llm.cost.prompt_details.audio"
LLM_COST_COMPLETION_OUTPUT: Final = "llm.cost.completion_details.output"
"""OpenInference: text completion tokens (reasoning and audio apart), USD."""
LLM_COST_COMPLETION_REASONING: Final = "llm.cost.completion_details.reasoning"
LLM_COST_COMPLETION_AUDIO: Final = "llm.cost.completion_details.audio"

ROUTER_COST_PREFIX: Final = "router.cost."
"""``router.cost.{component}``: every cost component in USD (``input``, ``cache_read``,
``cache_creation`` (five-minute writes, or all writes), ``cache_creation_1h``, ``input_audio``,
``input_image``, ``request``, ``output``, ``reasoning``, ``output_audio``, ``output_image``); they
add up to ``llm.usage.cost_usd`` exactly in atto-dollars (each is the nearest float to its exact
figure) when the computed cost settles."""
ROUTER_COST_SOURCE: Final = "router.cost.source"
"""Which cost settled the budget: ``computed`` (the price model) or ``provider`` (the billed
amount the response carried)."""
ROUTER_COST_COMPUTED_USD: Final = "router.cost.computed_usd"
ROUTER_COST_PROVIDER_USD: Final = "router.cost.provider_usd"
"""OpenRouter's ``usage.cost`` or a LiteLLM proxy's ``x-litellm-response-cost``, when present."""
ROUTER_COST_MISMATCH: Final = "router.cost.mismatch"
"""``true`` when the provider's and the computed cost differ by more than the policy's tolerance."""
ROUTER_SERVICE_TIER: Final = "router.service_tier"
"""The service tier the call was billed at (``flex``, ``priority`` …, ``default`` for the standard price),
when the response reported one or the request asked for one."""

# ---- tokens ----------------------------------------------------------------------------
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
"""GenAI conventions: prompt tokens read from the provider's cache (part of the input tokens)."""
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
"""GenAI conventions: prompt tokens written to the provider's cache (part of the input tokens)."""
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
"""Reasoning (thinking) tokens, part of the output tokens."""
LLM_TOKEN_COUNT_PROMPT_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
LLM_TOKEN_COUNT_PROMPT_AUDIO: Final = "llm.token_count.prompt_details.audio"
LLM_TOKEN_COUNT_COMPLETION_REASONING: Final = "llm.token_count.completion_details.reasoning"
LLM_TOKEN_COUNT_COMPLETION_AUDIO: Final = "llm.token_count.completion_details.audio"

TOKEN_TYPE_CACHE_READ: Final = "cache_read"
"""``gen_ai.token.type`` of cache-read prompt tokens on the token-usage histogram (a subset of ``input``)."""
TOKEN_TYPE_CACHE_CREATION: Final = "cache_creation"
"""``gen_ai.token.type`` of cache-write prompt tokens (a subset of ``input``)."""
TOKEN_TYPE_REASONING: Final = "reasoning"
"""``gen_ai.token.type`` of reasoning tokens (a subset of ``output``)."""

# ---- model, provider, request ----------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_SYSTEM: Final = "gen_ai.system"
"""Deprecated by the GenAI conventions for ``gen_ai.provider.name``; written for one more release."""
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_PROVIDER: Final = "llm.provider"
LLM_SYSTEM: Final = "llm.system"
LLM_FINISH_REASON: Final = "llm.finish_reason"
LLM_LATENCY_MS: Final = "llm.latency_ms"
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
"""``LLM`` on the routed call (the one model call), ``CHAIN`` on its attempt spans (steps)."""
LLM_INPUT_MESSAGES_PREFIX: Final = "llm.input_messages"
"""OpenInference: ``llm.input_messages.{i}.message.role`` / ``.message.content``."""
LLM_OUTPUT_MESSAGES_PREFIX: Final = "llm.output_messages"
OPENINFERENCE_PROJECT_NAME: Final = "openinference.project.name"
"""Resource attribute: the Phoenix project spans land in (Phoenix ignores ``service.name``)."""
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"

# ---- who -------------------------------------------------------------------------------
SESSION_ID: Final = "session.id"
USER_ID: Final = "user.id"
TEAM_ID: Final = "router.team_id"
TAG_TAGS: Final = "tag.tags"
"""OpenInference's list of tags."""
METADATA: Final = "metadata"
"""OpenInference's metadata, a JSON string."""

# ---- errors ----------------------------------------------------------------------------
ERROR_TYPE: Final = "error.type"

# ---- budgets ---------------------------------------------------------------------------
BUDGET_OUTCOME: Final = "budget.outcome"
"""``allowed`` | ``rejected`` | ``downgraded`` | ``warned`` | ``store_error`` | ``unbudgeted``."""
BUDGET_SCOPE: Final = "budget.scope"
"""The scope of a budget decision, as a metric attribute."""
BUDGET_SCOPES: Final = "budget.scopes"
BUDGET_NAMES: Final = "budget.names"
BUDGET_LIMIT_USD: Final = "budget.limit_usd"
"""The tightest applicable budget's limit."""
BUDGET_SPENT_BEFORE_USD: Final = "budget.spent_before_usd"
BUDGET_ESTIMATE_USD: Final = "budget.estimate_usd"
BUDGET_SETTLED_USD: Final = "budget.settled_usd"
BUDGET_REMAINING_USD: Final = "budget.remaining_usd"
BUDGET_DOWNGRADED_TO: Final = "budget.downgraded_to"
BUDGET_STORE_ERROR: Final = "budget.store_error"

BUDGET_SETTLE_JOURNALED: Final = "budget.settle.journaled"
"""How many of the call's budgets the store could not settle: their settles wait in the journal."""
BUDGET_JOURNAL_ACTION: Final = "budget.journal.action"
"""Metric attribute: ``journaled`` | ``replayed`` | ``dropped`` (the journal was full)."""
BUDGET_LEASE_FAULT: Final = "budget.lease.fault"
"""Why this router's budget leases fell back to per-call budgets (its settle journal refused an entry)."""
BUDGET_ON_STORE_LOST: Final = "budget.on_store_lost"
"""Metric attribute: the policy's ``on_store_lost`` when a store that lost its data is detected."""

EVENT_BUDGET_ALERT: Final = "budget.alert"
EVENT_BUDGET_WARNING: Final = "budget.exceeded_warning"
EVENT_STORE_ERROR: Final = "budget.store_error"
EVENT_COST_MISMATCH: Final = "router.cost.mismatch"
"""The provider's billed amount and the computed cost disagree beyond the tolerance."""
EVENT_UNHELD_SETTLE: Final = "budget.unheld_settle"
"""A settle charged a budget whose hold for the call was gone (expired, reset, never taken)."""
EVENT_INTERRUPTED_CHARGE: Final = "budget.interrupted_charge"
"""A cancelled, interrupted or timed-out call was charged its hold (``defaults.on_interrupted``)."""
EVENT_SETTLE_JOURNALED: Final = "budget.settle_journaled"
"""A settle (or release) the store did not take after its retries: kept in the journal (or dropped)."""
EVENT_LEASE_DEGRADED: Final = "budget.lease_degraded"
"""The journal refused this call's leased settle: settled in memory all the same, and the leases fall back."""
EVENT_STORE_LOST: Final = "budget.store_lost"
"""The store's epoch changed: it lost its data (a Redis restarted empty)."""

# ---- metrics ---------------------------------------------------------------------------
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_COST: Final = "costrouter.cost"
"""Counter of USD spent, by model group, deployment and model."""
METRIC_CALLS: Final = "costrouter.calls"
"""Counter of routed calls, by model group and outcome."""
METRIC_ATTEMPTS: Final = "costrouter.attempts"
"""Counter of provider attempts, by model group, deployment, kind and outcome."""
METRIC_BUDGET_DECISIONS: Final = "costrouter.budget.decisions"
"""Counter of budget decisions, by scope and outcome (never by id)."""
METRIC_BUDGET_UNHELD_SETTLES: Final = "costrouter.budget.unheld_settles"
"""Counter of settles that charged a budget with no live hold for the call, by scope."""
METRIC_SETTLE_JOURNAL: Final = "costrouter.budget.settle_journal"
"""Counter of settles journaled, replayed or dropped, by ``budget.journal.action``."""
METRIC_SETTLES_PENDING: Final = "costrouter.budget.settles_pending"
"""Gauge of the settles waiting in this process's journal."""
METRIC_STORE_LOST: Final = "costrouter.budget.store_lost"
"""Counter of detections of a store that lost its data, by ``budget.on_store_lost``."""
METRIC_SETTLE_UNIT: Final = "{settle}"
METRIC_STORE_LOST_UNIT: Final = "{detection}"
METRIC_ALERTS: Final = "costrouter.alerts"
"""Counter of budget alert deliveries, by sink and outcome (``sent``, ``retried``, ``failed``, ``dropped``)."""
CALL_OUTCOME: Final = "router.call.outcome"
"""``success`` | ``error`` | ``rejected``."""

# ---- metric units and buckets (added with the exporters, issue #4) ----------------------
# The Prometheus names the stack's dashboard queries are derived from name + unit + kind
# (see docs/telemetry.md), so each instrument must be created with exactly this unit.
METRIC_TOKEN_USAGE_UNIT: Final = "{token}"
"""Histogram; Prometheus: ``gen_ai_client_token_usage_{bucket,sum,count}``."""
METRIC_OPERATION_DURATION_UNIT: Final = "s"
"""Histogram; Prometheus: ``gen_ai_client_operation_duration_seconds_{bucket,sum,count}``."""
METRIC_COST_UNIT: Final = "USD"
"""Counter; Prometheus: ``costrouter_cost_USD_total``."""
METRIC_CALLS_UNIT: Final = "{call}"
"""Counter; Prometheus: ``costrouter_calls_total``."""
METRIC_ATTEMPTS_UNIT: Final = "{attempt}"
"""Counter; Prometheus: ``costrouter_attempts_total``."""
METRIC_BUDGET_DECISIONS_UNIT: Final = "{decision}"
"""Counter; Prometheus: ``costrouter_budget_decisions_total``."""
METRIC_BUDGET_UNHELD_SETTLES_UNIT: Final = "{settle}"
"""Counter; Prometheus: ``costrouter_budget_unheld_settles_total``."""
METRIC_IMPLAUSIBLE_USAGE: Final = "costrouter.usage.implausible"
"""Counter of answers with an implausible usage figure or amount (charged their hold), by deployment."""
METRIC_IMPLAUSIBLE_USAGE_UNIT: Final = "{call}"
"""Counter; Prometheus: ``costrouter_usage_implausible_total``."""

TOKEN_USAGE_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
"""Bucket boundaries the GenAI conventions advise for ``gen_ai.client.token.usage``."""
OPERATION_DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
"""Bucket boundaries (seconds) the GenAI conventions advise for ``gen_ai.client.operation.duration``."""

METRIC_INSTRUMENTS: Final = {
    METRIC_TOKEN_USAGE: ("histogram", METRIC_TOKEN_USAGE_UNIT),
    METRIC_OPERATION_DURATION: ("histogram", METRIC_OPERATION_DURATION_UNIT),
    METRIC_COST: ("counter", METRIC_COST_UNIT),
    METRIC_CALLS: ("counter", METRIC_CALLS_UNIT),
    METRIC_ATTEMPTS: ("counter", METRIC_ATTEMPTS_UNIT),
    METRIC_BUDGET_DECISIONS: ("counter", METRIC_BUDGET_DECISIONS_UNIT),
}
"""Every metric a routed call emits: name -> (instrument kind, unit). Prometheus names follow from these.

The store-fault metrics (``METRIC_SETTLE_JOURNAL``, ``METRIC_SETTLES_PENDING``, ``METRIC_STORE_LOST``)
appear only once a store fails, so they are not listed here."""

# ---- usage in units other than tokens (no GenAI convention names them) ----------------------
ROUTER_USAGE_SEARCH_UNITS: Final = "router.usage.search_units"
"""Rerank search units billed (Cohere: a query over up to 100 documents)."""
ROUTER_USAGE_AUDIO_SECONDS: Final = "router.usage.audio_seconds"
"""Seconds of audio transcribed."""
ROUTER_USAGE_CHARACTERS: Final = "router.usage.characters"
"""Characters of text turned into speech."""
ROUTER_USAGE_IMAGES: Final = "router.usage.images"
"""Images generated or edited."""
ROUTER_USAGE_PIXELS: Final = "router.usage.pixels"
"""Pixels generated (images x width x height)."""
USAGE_UNIT_ATTRIBUTES: Final = {
    "search_units": ROUTER_USAGE_SEARCH_UNITS,
    "audio_seconds": ROUTER_USAGE_AUDIO_SECONDS,
    "characters": ROUTER_USAGE_CHARACTERS,
    "images": ROUTER_USAGE_IMAGES,
    "pixels": ROUTER_USAGE_PIXELS,
}
"""The span attribute of each unit a call may be billed by (:data:`costrouter.pricing.UNITS`)."""
