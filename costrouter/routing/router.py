"""CostRouter: a LiteLLM Router whose every call is traced, priced and held to a budget."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from costrouter.budget import BudgetPolicy, BudgetStore
from costrouter.config.groups import RouterConfig
from costrouter.config.settings import Settings
from costrouter.context import Caller, Id, Tags, resolve_caller
from costrouter.ops import Op, RouteOp, adrive, drive
from costrouter.routing.building import build_litellm_router
from costrouter.routing.engine import CallEngine
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


def _unhooking(router: Any) -> Callable[[], None]:
    """LiteLLM's call that takes ``router``'s hooks out of its process-wide lists, the router still serving.

    ``Router.retire()`` from LiteLLM 1.110 (where ``discard()`` is its deprecated alias), ``discard()`` before.
    """
    retire = getattr(router, "retire", None)
    return cast("Callable[[], None]", retire if callable(retire) else router.discard)


class CostRouter(CallEngine):
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

    The budgets, telemetry and call planner are :class:`~costrouter.routing.engine.CallEngine`'s;
    this adds the LiteLLM Router (``litellm_router``) the calls go through.

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
        super().__init__(
            config,
            budgets=budgets,
            store=store,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            settings=settings,
            source=source,
            budgets_source=budgets_source,
        )
        self.litellm_router = build_litellm_router(self.config, source)
        self._unhook = weakref.finalize(self, _unhooking(self.litellm_router))
        """Takes the LiteLLM Router's hooks out of LiteLLM's lists at shutdown, or when this router is collected."""
        self._loop = shared_loop()
        """Where the sync twins of async-only LiteLLM calls are awaited (:mod:`costrouter.loop_thread`)."""

    def shutdown(self) -> None:
        """Flush spans and metrics, close the budget store, and unhook the LiteLLM Router.

        A LiteLLM Router puts its own success and failure hooks in LiteLLM's process-wide
        callback lists; until ``Router.retire()`` (``discard()`` before LiteLLM 1.110) takes
        them out, every later call in the process, through any router, runs them (each a copy
        of the model's price entry). A router dropped without a shutdown is unhooked when it
        is collected.
        """
        try:
            super().shutdown()
        finally:
            self._unhook()

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

    # ---- I/O -----------------------------------------------------------------------------
    def _execute(self, op: Op) -> Any:
        if isinstance(op, RouteOp) and op.through_loop:
            response = self._loop.run(getattr(self.litellm_router, f"a{op.method}")(**op.kwargs))
            return self._loop.iterate(response) if op.kwargs.get("stream") else response
        if isinstance(op, RouteOp):
            return getattr(self.litellm_router, op.method)(**op.kwargs)
        return super()._execute(op)

    async def _aexecute(self, op: Op) -> Any:
        if isinstance(op, RouteOp):
            return await getattr(self.litellm_router, f"a{op.method}")(**op.kwargs)
        return await super()._aexecute(op)
