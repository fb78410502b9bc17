"""``costrouter demo``: a realistic workload through the example configs, offline, in seconds.

A :class:`~costrouter.testing.ProviderDouble` on loopback plays every provider of
``configs/router.yaml`` (through ``COSTROUTER_DEMO_API_BASE`` / ``COSTROUTER_DEMO_API_KEY``).
Conversations of several users run one turn after the other, so that every run routes the
same calls the same way:

* ``fast-primary`` is flaky: a few 500s that LiteLLM retries, then a 429 that puts it in
  cooldown, after which ``fast-backup`` carries the group;
* ``fast`` has a short outage: both of its deployments answer 500 to every try (LiteLLM
  retries the primary, then the backup, as priorities say), and the call falls back to
  ``local``;
* one long-form session runs into its session budget: the :class:`BudgetExceededError` is
  caught and counted, and the session stops, as an application would;
* batch jobs tagged ``batch`` pass their (warn-only) tag budget and are logged.

Every span goes to the chosen exporter (a JSON-lines file by default) and, through a
second span processor, to memory; the summary is aggregated from those spans with
:mod:`costrouter.report`, so it shows what was recorded, not what the workload meant to do.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costrouter.budget import BudgetPolicy, BudgetStore, load_policy, store_from_config
from costrouter.cli.demo_rag import RAG_STEPS, run_rag
from costrouter.config.groups import RouterConfig, load_router_config
from costrouter.config.settings import Settings
from costrouter.errors import BudgetExceededError, ConfigError
from costrouter.otel import semconv as sc
from costrouter.otel.exporters import SpanRecord, configure_telemetry, span_to_record
from costrouter.report.summary import Report, build_report
from costrouter.routing.router import CostRouter
from costrouter.testing import Fail, ProviderDouble, Reply

__all__ = [
    "DEMO_BREAKDOWNS",
    "DemoOptions",
    "DemoResult",
    "Turn",
    "conversations",
    "default_config_paths",
    "run_demo",
]

DemoExporter = Literal["file", "console", "otlp"]

DEMO_BREAKDOWNS: Final = (("group",), ("session", "user"))
"""The demo's summary: per model group, and per session (with its user)."""

_REQUIRED_DEPLOYMENTS: Final = (
    "fast-primary",
    "fast-backup",
    "capable-primary",
    "local-llama",
    "embed-small",
    "rerank-small",
)
_DEMO_API_KEY: Final = "demo-key-not-a-secret"
_QUIET_LOGGERS: Final = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "costrouter", "costrouter.budget")


@dataclass(frozen=True)
class Turn:
    """One user message of a conversation, the answer size, and what goes wrong on the way.

    ``failures`` maps a deployment id to the failures its provider returns, in order,
    before it answers again.
    """

    prompt: str
    answer_tokens: int
    max_tokens: int
    failures: Mapping[str, tuple[Fail, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Conversation:
    """A session: who pays, which model group it asks, and its turns."""

    session: str
    user: str
    group: str
    turns: tuple[Turn, ...]
    team: str | None = None
    tags: tuple[str, ...] = ()
    system: str = "You are a concise, helpful assistant."


def _turns(*turns: tuple[str, int, int] | tuple[str, int, int, Mapping[str, tuple[Fail, ...]]]) -> tuple[Turn, ...]:
    return tuple(Turn(*turn) for turn in turns)


_RATE_LIMITED: Final = Fail(429, retry_after=0.01, message="rate limit reached for requests")
_SERVER_ERROR: Final = Fail(500, message="the server had an error while processing your request")
_DOWN: Final = (Fail(500, message="upstream unavailable"),) * 3
_FAST_DOWN: Final = {"fast-primary": _DOWN, "fast-backup": _DOWN}
"""Both deployments of ``fast`` fail every try (first + 2 retries each): the call falls back to ``local``."""


def conversations() -> tuple[Conversation, ...]:
    """The demo workload, in the order it runs."""
    return (
        Conversation(
            "demo-support-01",
            "alice",
            "fast",
            _turns(
                ("My invoice shows two charges for March, can you explain why?", 90, 256),
                (
                    "The second one says 'pro-rated upgrade'. What does that mean?",
                    110,
                    256,
                    {"fast-primary": (_SERVER_ERROR,)},
                ),
                ("Can I get the upgrade refunded if I downgrade today?", 80, 256),
                ("Thanks, please open a ticket for that.", 40, 128),
            ),
            team="support",
        ),
        Conversation(
            "demo-support-02",
            "bob",
            "fast",
            _turns(
                ("How do I rotate my API key without downtime?", 120, 256),
                ("Does the old key keep working for a while?", 60, 256),
                ("Great, and where do I see the key's last use?", 70, 256, _FAST_DOWN),
            ),
            team="support",
        ),
        Conversation(
            "demo-research-01",
            "carol",
            "capable",
            _turns(
                ("Summarise the trade-offs between optimistic and pessimistic locking for a ledger.", 380, 600),
                ("Which one would you choose for 2,000 writes per second on one account?", 420, 600),
                ("Sketch the schema and the transaction for the design you chose.", 450, 600),
                ("What would you monitor in production?", 300, 600),
            ),
            team="research",
        ),
        Conversation(
            "demo-batch-01",
            "batch-bot",
            "local",
            _turns(
                *(
                    (f"Summarise support ticket #{ticket} in one sentence: customer reports a billing issue.", 45, 96)
                    for ticket in range(4101, 4107)
                )
            ),
            tags=("batch",),
        ),
        Conversation(
            "demo-support-03",
            "alice",
            "fast",
            _turns(
                ("Is there a way to export all my invoices as CSV?", 95, 256, {"fast-primary": (_SERVER_ERROR,)}),
                ("And for the last two years only?", 55, 256),
                ("Perfect.", 15, 64),
            ),
            team="support",
        ),
        Conversation(
            "demo-essay-01",
            "dave",
            "capable",
            _turns(
                ("Write a detailed design document for a multi-region rate limiter.", 1000, 1200),
                ("Expand the section on clock skew with worked examples.", 1000, 1200),
                ("Now add a full section on failure modes and recovery.", 1000, 1200),
                ("Add an appendix with the Lua scripts.", 1000, 1200),
            ),
            team="research",
        ),
        Conversation(
            "demo-support-04",
            "erin",
            "fast",
            _turns(
                ("Why was my account locked this morning?", 85, 256),
                ("I did not get the unlock email.", 75, 256, {"fast-primary": (_RATE_LIMITED,)}),
                ("Found it in spam, thanks!", 20, 64),
            ),
        ),
        Conversation(
            "demo-research-02",
            "carol",
            "capable",
            _turns(
                ("Compare token-bucket and sliding-window rate limiting in a table.", 350, 600),
                ("Which one is cheaper to run on Redis Cluster?", 280, 600),
            ),
            team="research",
        ),
        Conversation(
            "demo-support-05",
            "bob",
            "fast",
            _turns(
                ("Can two people share one seat?", 60, 256),
                ("What does an extra seat cost per month?", 50, 256),
                ("Add one seat to my plan, please.", 35, 128),
            ),
            team="support",
        ),
    )


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo.

    ``exporter``: ``file`` writes spans as JSON lines to ``spans_file`` (replaced at the
    start of the run), ``console`` prints them, ``otlp`` sends spans and metrics to
    ``otlp_endpoint`` (OTLP/HTTP, such as ``http://localhost:4318``). ``redis_url`` uses a
    Redis budget store instead of the in-process one.
    """

    router_path: Path
    budgets_path: Path
    exporter: DemoExporter = "file"
    spans_file: Path = Path("costrouter-demo-spans.jsonl")
    otlp_endpoint: str | None = None
    redis_url: str | None = None


@dataclass(frozen=True)
class DemoResult:
    """What the demo recorded, and what its workload saw."""

    report: Report
    records: tuple[SpanRecord, ...]
    caught_budget_errors: int
    caught_other_errors: int
    turns_planned: int
    store: str
    exporter: DemoExporter
    spans_file: Path | None
    otlp_endpoint: str | None
    seconds: float


def default_config_paths() -> tuple[Path, Path]:
    """``configs/router.yaml`` and ``configs/demo-budgets.yaml``: here, else beside the package."""
    for base in (Path("configs"), Path(__file__).resolve().parent.parent / "configs"):
        router, budgets = base / "router.yaml", base / "demo-budgets.yaml"
        if router.is_file() and budgets.is_file():
            return router, budgets
    return Path("configs/router.yaml"), Path("configs/demo-budgets.yaml")


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the demo and put the previous values back after it."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Keep LiteLLM's and costrouter's log lines out of the progress bar; spans say it all."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _models(config: RouterConfig, source: str) -> dict[str, str]:
    """The model name the provider double sees for each deployment id."""
    models = {
        deployment_id: deployment.model.split("/", 1)[-1] for _, deployment_id, deployment in config.deployments()
    }
    missing = [deployment_id for deployment_id in _REQUIRED_DEPLOYMENTS if deployment_id not in models]
    if missing:
        reason = f"the demo needs the deployments of configs/router.yaml; missing: {', '.join(missing)}"
        raise ConfigError.single(source, "groups", reason)
    return models


def _policy(path: Path, redis_url: str | None) -> BudgetPolicy:
    policy = load_policy(path)
    if redis_url is None:
        return policy
    store = policy.store.model_copy(update={"backend": "redis", "redis_url": redis_url})
    return policy.model_copy(update={"store": store})


def _fresh_budgets(policy: BudgetPolicy, store: BudgetStore, workload: Sequence[Conversation]) -> None:
    """Start the demo's own sessions, users and tags from zero (a shared Redis remembers them).

    Raises :class:`~costrouter.errors.BudgetStoreError` when the store cannot be reached.
    """
    refs = {
        (ref.name, ref.scope_id): ref
        for conversation in workload
        for ref in policy.budgets_for(conversation.session, conversation.user, conversation.team, conversation.tags)
        if ref.scope != "global"
    }
    for ref in refs.values():
        store.reset(ref)


def _script(provider: ProviderDouble, models: Mapping[str, str], turn: Turn) -> None:
    for model in set(models.values()):
        provider.set_default(model, Reply(completion_tokens=turn.answer_tokens))
    for deployment_id, failures in turn.failures.items():
        provider.script(models[deployment_id], *failures)


def _run_workload(
    router: CostRouter,
    provider: ProviderDouble,
    models: Mapping[str, str],
    workload: Sequence[Conversation],
    on_turn: Callable[[str], None],
) -> tuple[int, int]:
    """Route every turn; returns ``(budget errors caught, other errors caught)``."""
    budget_errors = other_errors = 0
    for conversation in workload:
        messages: list[dict[str, Any]] = [{"role": "system", "content": conversation.system}]
        for index, turn in enumerate(conversation.turns):
            on_turn(f"{conversation.session} ({conversation.user} → {conversation.group})")
            _script(provider, models, turn)
            messages.append({"role": "user", "content": turn.prompt})
            try:
                response = router.route_completion(
                    conversation.group,
                    messages,
                    session_id=conversation.session,
                    user_id=conversation.user,
                    team_id=conversation.team,
                    tags=conversation.tags,
                    metadata={"app": "costrouter-demo"},
                    max_tokens=turn.max_tokens,
                )
            except BudgetExceededError:
                budget_errors += 1
                for _ in conversation.turns[index + 1 :]:
                    on_turn(f"{conversation.session}: stopped by its budget")
                break
            except Exception:  # LiteLLM's errors: the demo counts them and carries on, as an app would
                other_errors += 1
                messages.pop()
                continue
            messages.append({"role": "assistant", "content": response.choices[0].message.content})
    return budget_errors, other_errors


def run_demo(options: DemoOptions, on_turn: Callable[[str], None] | None = None) -> DemoResult:
    """Run the workload and return the report built from the spans it recorded.

    ``on_turn`` is called before each planned turn (for a progress bar). Raises
    :class:`~costrouter.errors.ConfigError` for a bad config or budget file and
    :class:`~costrouter.errors.BudgetStoreError` when the Redis store is unreachable.
    """
    started = time.perf_counter()
    config = load_router_config(options.router_path)
    models = _models(config, str(options.router_path))
    policy = _policy(options.budgets_path, options.redis_url)
    workload = conversations()
    notify = on_turn or (lambda _: None)
    environment: dict[str, str] = {}
    if options.otlp_endpoint is not None:
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = options.otlp_endpoint
    if options.exporter == "file":
        options.spans_file.unlink(missing_ok=True)
    settings = Settings(exporter=options.exporter, export_file=options.spans_file, service_name="costrouter-demo")
    memory = InMemorySpanExporter()
    store = store_from_config(policy.store, redis_url=options.redis_url)
    try:
        _fresh_budgets(policy, store, workload)
    except BaseException:
        store.close()
        raise
    with ProviderDouble() as provider, _quiet_logs():
        environment |= {"COSTROUTER_DEMO_API_BASE": provider.base_url, "COSTROUTER_DEMO_API_KEY": _DEMO_API_KEY}
        with _environment(environment):
            telemetry = configure_telemetry(settings, set_global=False)
            tracer_provider = telemetry.tracer_provider
            if not isinstance(tracer_provider, SdkTracerProvider):  # set_global=False always builds one
                raise TypeError("the demo needs an SDK tracer provider")
            tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
            router = CostRouter(
                config,
                budgets=policy,
                store=store,
                tracer_provider=tracer_provider,
                meter_provider=telemetry.meter_provider,
                settings=settings,
                source=str(options.router_path),
            )
            try:
                budget_errors, other_errors = _run_workload(router, provider, models, workload, notify)
                rag_budget_errors, rag_other_errors = run_rag(router, provider, models, notify)
                budget_errors += rag_budget_errors
                other_errors += rag_other_errors
            finally:
                router.shutdown()
                telemetry.shutdown()
    records = tuple(span_to_record(span) for span in memory.get_finished_spans())
    source = str(options.spans_file) if options.exporter == "file" else f"{options.exporter} exporter"
    return DemoResult(
        report=build_report(source, records, DEMO_BREAKDOWNS),
        records=records,
        caught_budget_errors=budget_errors,
        caught_other_errors=other_errors,
        turns_planned=sum(len(conversation.turns) for conversation in workload) + RAG_STEPS,
        store=policy.store.backend,
        exporter=options.exporter,
        spans_file=options.spans_file if options.exporter == "file" else None,
        otlp_endpoint=options.otlp_endpoint,
        seconds=time.perf_counter() - started,
    )


def budget_outcomes(records: Sequence[SpanRecord]) -> dict[str, int]:
    """How many routed calls each budget outcome had (``allowed``, ``warned``, ``rejected`` …)."""
    counts: dict[str, int] = {}
    for record in records:
        if record["name"].startswith(sc.CALL_SPAN_NAME_PREFIXES):
            outcome = str(record["attributes"].get(sc.BUDGET_OUTCOME, "unbudgeted"))
            counts[outcome] = counts.get(outcome, 0) + 1
    return dict(sorted(counts.items()))


def budget_alerts(records: Sequence[SpanRecord]) -> list[str]:
    """Each ``budget.alert`` event as text: ``user-daily for user carol reached 50%``."""
    alerts = []
    for record in records:
        for event in record.get("events") or []:
            if event["name"] == sc.EVENT_BUDGET_ALERT:
                attributes = event["attributes"]
                threshold = float(attributes.get("threshold", 0))
                alerts.append(
                    f"{attributes.get('budget')} for {attributes.get('scope')} "
                    f"{attributes.get('scope_id')} reached {threshold:.0%}"
                )
    return alerts
