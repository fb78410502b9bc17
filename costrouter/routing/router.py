"""CostRouter: a LiteLLM Router whose every call is traced, priced and held to a budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from costrouter.budget import BudgetPolicy, BudgetStore, load_policy, store_from_config
from costrouter.budget.alerts import AlertDispatcher
from costrouter.budget.factory import leased_store_of
from costrouter.budget.renewal import HoldRenewer
from costrouter.budget.settling import build_guard
from costrouter.budget.view import BudgetsView
from costrouter.config.groups import RouterConfig, load_router_config, parse_router_config
from costrouter.config.reader import validate
from costrouter.config.settings import Settings
from costrouter.context import Caller, Id, Tags, resolve_caller
from costrouter.ops import Flow, Op, RouteOp, SleepOp, WaitOp, adrive, await_wait, drive, wait
from costrouter.otel.attempts import attempt_tracker
from costrouter.otel.backends import backend as backend_preset
from costrouter.otel.exporters import TelemetrySetup, configure_telemetry
from costrouter.otel.telemetry import Telemetry
from costrouter.routing.building import build_litellm_router
from costrouter.routing.calls import CallPlanner
from costrouter.routing.loop_thread import shared_loop
from costrouter.routing.operations import (
    CHAT,
    EMBEDDING,
    IMAGE_EDIT,
    IMAGE_GENERATION,
    MESSAGES,
    RERANK,
    RESPONSES,
    SPEECH,
    TEXT_COMPLETION,
    TRANSCRIPTION,
    Operation,
)
from costrouter.routing.streaming import AsyncRoutedStream, RoutedStream

Messages = Sequence[Mapping[str, Any]]
T = TypeVar("T")


def _hold_ttl(store: BudgetStore, policy: BudgetPolicy) -> int:
    """The TTL the store gives holds (a store passed in may have its own settings)."""
    config = getattr(store, "config", None)
    return int(getattr(config, "hold_ttl_seconds", policy.store.hold_ttl_seconds))


class CostRouter:
    """Routes calls through a LiteLLM Router, with a span, a price and budgets.

    Chat completions (``route_completion``), embeddings (``route_embedding``), the
    Responses API (``route_response``), legacy text completions (``route_text_completion``)
    and Anthropic-native messages (``route_messages``), each with an async twin.

    ``config`` is a :class:`RouterConfig` or a plain mapping in either YAML format;
    ``budgets`` a :class:`BudgetPolicy` or mapping (none: nothing is enforced, spend
    is still traced). ``tracer_provider``/``meter_provider`` default to the global
    ones, so an application's own OpenTelemetry setup is respected; when neither is
    given and ``settings.exporter`` (``COSTROUTER_EXPORTER``) is not ``none``,
    costrouter sets up its own export (console, OTLP or a JSON-lines file).

    With a budget policy, ``guard`` retries settles, keeps the ones the store refuses in
    a journal on local disk and replays them, and refuses a store that lost its data
    (:mod:`costrouter.settling`); ``guard.pending()`` is what waits.
    """

    def __init__(
        self,
        config: RouterConfig | Mapping[str, Any],
        *,
        budgets: BudgetPolicy | Mapping[str, Any] | None = None,
        store: BudgetStore | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        settings: Settings | None = None,
        source: str = "<config>",
        budgets_source: str = "<budgets>",
    ) -> None:
        self.settings = settings or Settings()
        self.config = parse_router_config(config, source)
        self.policy = None if budgets is None else validate(BudgetPolicy, budgets, budgets_source)
        if self.policy is not None:
            self.policy.check_downgrade_targets(self.config.groups, budgets_source)
        self.store = store
        if self.store is None and self.policy is not None:
            self.store = store_from_config(self.policy.store, redis_url=self.settings.redis_url)
        self.litellm_router = build_litellm_router(self.config, source)
        self.telemetry_setup: TelemetrySetup | None = None
        if tracer_provider is None and meter_provider is None and self.settings.exporter != "none":
            self.telemetry_setup = configure_telemetry(self.settings)
            tracer_provider = self.telemetry_setup.tracer_provider
            meter_provider = self.telemetry_setup.meter_provider
        self.telemetry = Telemetry(
            tracer_provider,
            meter_provider,
            capture_content=self.settings.capture_content,
            content_max_chars=self.settings.content_max_chars,
            backend=backend_preset(self.settings.backend),
            genai_cost=self.settings.genai_cost_attributes,
        )
        self._planner = CallPlanner(self.config, self.telemetry, attempt_tracker(), self.policy)
        if self.store is not None and self.policy is not None:
            self._planner.renewer = HoldRenewer(self.store, _hold_ttl(self.store, self.policy))
        self.guard = (
            None if self.policy is None or self.store is None else build_guard(self.policy, self.store, self.telemetry)
        )
        self._planner.guard = self.guard
        leased = leased_store_of(self.store)
        if leased is not None:
            leased.alert_sink = self._planner.lease_alert
        self._loop = shared_loop()
        """Where the sync twins of async-only LiteLLM calls are awaited (:mod:`costrouter.loop_thread`)."""

    @classmethod
    def from_files(
        cls,
        router: str | Path,
        budgets: str | Path | None = None,
        **options: Any,
    ) -> CostRouter:
        """Build from a model-group YAML (either format) and an optional budget policy YAML."""
        config = load_router_config(router)
        policy = load_policy(budgets) if budgets is not None else None
        return cls(config, budgets=policy, source=str(router), budgets_source=str(budgets), **options)

    @property
    def budgets(self) -> BudgetsView | None:
        """Spend, holds and remaining per scope and id (``None`` without a budget policy).

        >>> router.budgets.status("session", "sess-1")[0].remaining_units
        """
        if self.policy is None or self.store is None:
            return None
        return BudgetsView(self.policy, self.store)

    # ---- routed calls ------------------------------------------------------------------
    def route_completion(
        self,
        group: str,
        messages: Messages,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """Route one chat completion through ``group``; returns LiteLLM's response unchanged.

        With ``stream=True`` returns a stream to iterate; its call ends with the stream.
        Raises :class:`BudgetExceededError` before any provider is called when a budget
        refuses, and LiteLLM's own exceptions unchanged.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(CHAT, group, messages, caller, litellm_kwargs)

    async def aroute_completion(
        self,
        group: str,
        messages: Messages,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_completion`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(CHAT, group, messages, caller, litellm_kwargs)

    def route_embedding(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """Embed ``input=`` (a string or a list) through ``group``; returns LiteLLM's ``EmbeddingResponse``.

        Held for every input token at the dearest input price the call can reach.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(EMBEDDING, group, (), caller, litellm_kwargs)

    async def aroute_embedding(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_embedding`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(EMBEDDING, group, (), caller, litellm_kwargs)

    def route_response(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """One Responses API call (``input=``, ``instructions=`` …) through ``group``.

        Returns LiteLLM's ``ResponsesAPIResponse``; with ``stream=True`` a stream of its
        events whose call ends at ``response.completed``, on early close, or on failure.
        Without ``max_output_tokens`` the policy's output cap is sent, so the hold is a bound.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(RESPONSES, group, (), caller, litellm_kwargs)

    async def aroute_response(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_response`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(RESPONSES, group, (), caller, litellm_kwargs)

    def route_text_completion(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """One legacy text completion (``prompt=``) through ``group``; returns LiteLLM's ``TextCompletionResponse``.

        LiteLLM's sync ``Router.text_completion`` fails for every deployment (it passes the
        group name on as the model), so this awaits ``Router.atext_completion`` on
        costrouter's loop thread: the same retries, fallbacks and callbacks as the async twin.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(TEXT_COMPLETION, group, (), caller, litellm_kwargs)

    async def aroute_text_completion(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_text_completion`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(TEXT_COMPLETION, group, (), caller, litellm_kwargs)

    def route_messages(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """One Anthropic-native ``/v1/messages`` call (``messages=``, ``max_tokens=``, ``system=`` …).

        Returns LiteLLM's response (Anthropic's message as a dict); with ``stream=True`` a
        stream of Anthropic's server-sent events (bytes) whose call ends at ``message_stop``,
        on early close, or on failure. LiteLLM's sync ``Router.anthropic_messages`` returns a
        coroutine, so this awaits it on costrouter's loop thread.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(MESSAGES, group, (), caller, litellm_kwargs)

    async def aroute_messages(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_messages`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(MESSAGES, group, (), caller, litellm_kwargs)

    def route_rerank(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """Rerank ``documents=`` against ``query=`` through ``group``; returns LiteLLM's ``RerankResponse``.

        Held for the search units the documents can take (one per 100 documents, a long
        document counting once per 500 tokens). LiteLLM's Router has
        it in async only: this awaits it on costrouter's loop thread.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(RERANK, group, (), caller, litellm_kwargs)

    async def aroute_rerank(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_rerank`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(RERANK, group, (), caller, litellm_kwargs)

    def route_transcription(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """Transcribe ``file=`` (bytes, a path, a binary file, ``(name, content)``) through ``group``.

        Returns LiteLLM's ``TranscriptionResponse``. Held for the seconds a WAV header states,
        else the file's size at 8 kbit/s capped by ``defaults.max_audio_seconds``; settled by
        the duration (or tokens) the response reports. LiteLLM's Router has it in async only: this awaits it on
        costrouter's loop thread.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(TRANSCRIPTION, group, (), caller, litellm_kwargs)

    async def aroute_transcription(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_transcription`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(TRANSCRIPTION, group, (), caller, litellm_kwargs)

    def route_speech(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """Speak ``input=`` (with ``voice=`` …) through ``group``; returns LiteLLM's binary audio response.

        Held and settled for every character of the input. LiteLLM's Router has it in async only: this awaits it on
        costrouter's loop thread.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(SPEECH, group, (), caller, litellm_kwargs)

    async def aroute_speech(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_speech`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(SPEECH, group, (), caller, litellm_kwargs)

    def route_image(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """Generate images (``prompt=``, ``n=``, ``size=``, ``quality=``) through ``group``.

        Returns LiteLLM's ``ImageResponse``. Held for ``n`` images of the requested size and
        quality (the dearest when unspecified), settled for the images the response holds.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(IMAGE_GENERATION, group, (), caller, litellm_kwargs)

    async def aroute_image(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_image`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(IMAGE_GENERATION, group, (), caller, litellm_kwargs)

    def route_image_edit(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """Edit ``image=`` by ``prompt=`` through ``group``; priced and held as :meth:`route_image`.

        LiteLLM's Router has it in async only: this awaits it on
        costrouter's loop thread.
        """
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return self._route(IMAGE_EDIT, group, (), caller, litellm_kwargs)

    async def aroute_image_edit(
        self,
        group: str,
        *,
        session_id: Id | None = None,
        user_id: Id | None = None,
        team_id: Id | None = None,
        tags: Tags | None = None,
        metadata: Mapping[str, Any] | None = None,
        **litellm_kwargs: Any,
    ) -> Any:
        """The async twin of :meth:`route_image_edit`."""
        caller = resolve_caller(session_id, user_id, team_id, tags, metadata)
        return await self._aroute(IMAGE_EDIT, group, (), caller, litellm_kwargs)

    def _route(
        self, operation: Operation, group: str, messages: Messages, caller: Caller, kwargs: dict[str, Any]
    ) -> Any:
        result = drive(self._planner.call_flow(operation, group, messages, caller, kwargs), self._execute)
        if not kwargs.get("stream"):
            return result
        call, stream = result
        return RoutedStream(self._planner, call, stream, self._drive)

    async def _aroute(
        self, operation: Operation, group: str, messages: Messages, caller: Caller, kwargs: dict[str, Any]
    ) -> Any:
        result = await adrive(self._planner.call_flow(operation, group, messages, caller, kwargs), self._aexecute)
        if not kwargs.get("stream"):
            return result
        call, stream = result
        return AsyncRoutedStream(self._planner, call, stream, self._adrive, self._drive)

    # ---- for routers that are not ours (the LiteLLM proxy's) -----------------------------
    @property
    def planner(self) -> CallPlanner:
        """The decisions of this router's calls (estimates, budgets, attributes), for :mod:`costrouter.proxy`."""
        return self._planner

    async def arun_flow(self, flow: Flow[T]) -> T:
        """Run one of the planner's flows, awaiting its store ops (:func:`costrouter.ops.adrive`)."""
        return await adrive(flow, self._aexecute)

    def run_flow(self, flow: Flow[T]) -> T:
        """Run one of the planner's flows, blocking on its store ops (:func:`costrouter.ops.drive`)."""
        return drive(flow, self._execute)

    # ---- I/O -----------------------------------------------------------------------------
    def _execute(self, op: Op) -> Any:
        if isinstance(op, RouteOp) and op.through_loop:
            response = self._loop.run(getattr(self.litellm_router, f"a{op.method}")(**op.kwargs))
            return self._loop.iterate(response) if op.kwargs.get("stream") else response
        if isinstance(op, RouteOp):
            return getattr(self.litellm_router, op.method)(**op.kwargs)
        if isinstance(op, SleepOp):
            return time.sleep(op.seconds)
        if isinstance(op, WaitOp):
            return wait(op)
        return getattr(self._store(), op.method)(*op.args, **op.kwargs)

    async def _aexecute(self, op: Op) -> Any:
        if isinstance(op, RouteOp):
            return await getattr(self.litellm_router, f"a{op.method}")(**op.kwargs)
        if isinstance(op, SleepOp):
            return await asyncio.sleep(op.seconds)
        if isinstance(op, WaitOp):
            return await await_wait(op)
        return await getattr(self._store(), f"a{op.method}")(*op.args, **op.kwargs)

    def _store(self) -> BudgetStore:
        if self.store is None:
            raise RuntimeError("a budget operation without a budget store")  # a flow bug, not a user error
        return self.store

    def _drive(self, flow: Any) -> None:
        drive(flow, self._execute)

    async def _adrive(self, flow: Any) -> None:
        await adrive(flow, self._aexecute)

    @property
    def alerts(self) -> AlertDispatcher:
        """The budget alert sender of this router (``flush()``, ``stats``)."""
        return self._planner.alerts

    def shutdown(self) -> None:
        """Flush spans and metrics and close the budget store.

        Providers costrouter set up from settings are shut down; an application's own
        providers are only flushed (they are the application's to shut down).
        """
        if self.telemetry_setup is not None:
            self.telemetry_setup.shutdown()
        else:
            for provider in (self.telemetry.tracer_provider, self.telemetry.meter_provider):
                flush = getattr(provider, "force_flush", None)
                if callable(flush):
                    flush()
        if self._planner.renewer is not None:
            self._planner.renewer.stop()
        if self.guard is not None:
            self.guard.close()
        self._planner.alerts.close()
        if self.store is not None:
            self.store.close()
