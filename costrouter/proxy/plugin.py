"""The LiteLLM proxy callback: a hold before each routed request, one span and an exact settle after it.

The proxy keeps routing with its own Router; the plugin runs costrouter's call flow
around it (:meth:`costrouter.routing.calls.CallPlanner.hold_flow`):

- ``async_pre_call_hook``: who pays (:mod:`costrouter.proxy.payer`), the span, the estimate
  and a hold on every applicable budget; a refusal raises at once (429,
  :mod:`costrouter.proxy.refusal`), a downgrade rewrites the request's ``model``;
- ``async_post_call_success_hook``: settle from the response (non-streaming);
- ``async_post_call_streaming_iterator_hook``: the stream's chunks pass through and the call
  settles when it ends, or when the client goes away (what was delivered);
- ``async_post_call_failure_hook``: release (or charge an interrupted call, as the library does).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import threading
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from typing_extensions import override

from costrouter.config.settings import Settings
from costrouter.errors import BudgetExceededError, BudgetStoreError, ConfigError, ConfigProblem
from costrouter.ops import through_cancellation
from costrouter.otel.attempts import CALL_ID_KEY, attempt_tracker
from costrouter.proxy.payer import METADATA_KEYS, payer
from costrouter.proxy.price_advice import advice
from costrouter.proxy.refusal import refusal_exception
from costrouter.routing.engine import CallEngine
from costrouter.routing.operations import (
    CHAT,
    EMBEDDING,
    IMAGE_GENERATION,
    MESSAGES,
    RERANK,
    RESPONSES,
    SPEECH,
    TEXT_COMPLETION,
    Operation,
)
from costrouter.routing.routed_call import RoutedCall
from costrouter.routing.streaming import StreamEnd, StreamTally, stream_finish_flow

logger = logging.getLogger("costrouter")

OPERATIONS: Mapping[str, Operation] = {
    "completion": CHAT,
    "acompletion": CHAT,
    "embeddings": EMBEDDING,
    "aembedding": EMBEDDING,
    "responses": RESPONSES,
    "aresponses": RESPONSES,
    "text_completion": TEXT_COMPLETION,
    "atext_completion": TEXT_COMPLETION,
    "image_generation": IMAGE_GENERATION,
    "aimage_generation": IMAGE_GENERATION,
    "speech": SPEECH,
    "aspeech": SPEECH,
    "rerank": RERANK,
    "arerank": RERANK,
    "anthropic_messages": MESSAGES,
}
"""The proxy's call types costrouter holds, prices and traces; others pass through untouched."""

SETTLED_BY_LOG = frozenset({SPEECH.name, RERANK.name})
"""Operations whose proxy routes call no success hook: settled by LiteLLM's success log of the call."""

_NOT_REQUEST_PARAMS = frozenset(
    {"model", "messages", "user", "proxy_server_request", "secret_fields", "mock_testing_fallbacks"}
)


def request_params(data: Mapping[str, Any], operation: Operation = CHAT) -> dict[str, Any]:
    """The request's own parameters (``max_tokens``, ``input``, ``stream`` …), without the proxy's bookkeeping.

    ``messages`` is a parameter of Anthropic's ``/v1/messages`` (the chat operations take it
    apart); on an image request it is the proxy's copy of the prompt, for its guardrails.
    """
    return {
        key: value
        for key, value in data.items()
        if (key not in _NOT_REQUEST_PARAMS or (key == "messages" and operation is MESSAGES))
        and key not in METADATA_KEYS
        and not key.startswith(("litellm_", "user_api_key", "_"))
    }


def loaded_config_path() -> Path | None:
    """The ``config.yaml`` the running proxy loaded (``--config``, else ``CONFIG_FILE_PATH``); ``None`` outside one."""
    proxy_server = sys.modules.get("litellm.proxy.proxy_server")
    loaded = getattr(proxy_server, "user_config_file_path", None) if proxy_server is not None else None
    loaded = loaded or os.environ.get("CONFIG_FILE_PATH")
    return Path(loaded) if loaded else None


def config_path() -> Path:
    """:func:`loaded_config_path`, or a clear error when the proxy has no config file."""
    path = loaded_config_path()
    if path is None:
        reason = "the proxy was started without a config file (litellm --config config.yaml)"
        raise ConfigError("<litellm proxy>", [ConfigProblem("model_list", reason)])
    return path


def _call_id(data: Mapping[str, Any]) -> str | None:
    for key in METADATA_KEYS:
        metadata = data.get(key)
        if isinstance(metadata, Mapping) and isinstance(metadata.get(CALL_ID_KEY), str):
            return str(metadata[CALL_ID_KEY])
    return None


def _logged_call_id(kwargs: Mapping[str, Any]) -> str | None:
    """The call id in the keyword arguments LiteLLM gives a success log (its ``litellm_params``' metadata)."""
    params = kwargs.get("litellm_params")
    found = _call_id(params) if isinstance(params, Mapping) else None
    return found or _call_id(kwargs)


class CostRouterProxyHandler(CustomLogger):
    """Holds, prices and traces every request the LiteLLM proxy routes (see the module docstring).

    Built when the proxy loads its ``config.yaml`` (its ``model_list`` and ``router_settings``,
    read by the loader of :meth:`CostRouter.from_files`) and the ``COSTROUTER_*`` settings, as a
    :class:`CallEngine`: budgets, telemetry and pricing without a LiteLLM Router of its own (the
    proxy's Router is the process's only one). ``router`` is given in tests to skip that.
    """

    def __init__(self, router: CallEngine | None = None) -> None:
        super().__init__()
        self._router = router
        self._build_lock = threading.Lock()
        self._calls: dict[str, RoutedCall] = {}
        attempt_tracker()  # in LiteLLM's callbacks before the proxy builds its first request's logging
        if router is None and loaded_config_path() is not None:
            # Inside the proxy, loading its config: a bad budget file stops the start, not a request.
            self._router = self._build()

    @property
    def router(self) -> CallEngine:
        """The costrouter the hooks run on (built from the proxy's config on first use)."""
        if self._router is None:
            with self._build_lock:
                if self._router is None:
                    self._router = self._build()
        return self._router

    @staticmethod
    def _build() -> CallEngine:
        settings = Settings()
        path = config_path()
        router = CallEngine.from_files(path, settings.budgets, settings=settings)
        slow_prices = advice(router.config, str(path))
        if slow_prices is not None:
            logger.warning(slow_prices)
        # When the proxy exits (SIGINT, see docs/proxy.md): the leases carry their settled spend to
        # Redis and give back their room, the spans of the last interval go out.
        atexit.register(router.shutdown)
        logger.info("costrouter.proxy: holding and tracing the proxy's calls (%s)", path)
        return router

    # ---- before the call -----------------------------------------------------------------
    @override
    async def async_pre_call_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        cache: Any,
        data: dict[str, Any],
        call_type: Any,
    ) -> dict[str, Any] | None:
        """Hold the budgets of the request's payer; refuse it at once with a 429 when a budget says no."""
        operation = OPERATIONS.get(str(call_type))
        if operation is None or not isinstance(data.get("model"), str):
            return None
        router = self.router
        caller = payer(data, user_api_key_dict.user_id, user_api_key_dict.team_id)
        messages = data.get("messages") if operation.takes_messages else ()
        params = request_params(data, operation)
        flow = router.planner.hold_flow(operation, data["model"], messages or (), caller, params)
        try:
            call = await router.arun_flow(flow)
        except BudgetExceededError as exc:
            raise refusal_exception(exc) from exc
        except BudgetStoreError as exc:
            raise ProxyException(str(exc), "budget_store_error", None, 503) from exc
        except ValueError as exc:
            raise ProxyException(str(exc), "invalid_request_error", None, 400) from exc
        self._calls[call.call_id] = call
        self._apply(call, data)
        return data

    def _apply(self, call: RoutedCall, data: dict[str, Any]) -> None:
        """What the Router must see: the (maybe downgraded) group, the call id, the output cap, stream usage."""
        kwargs = self.router.planner.route_kwargs(call)
        data["model"] = kwargs["model"]
        output_arg = call.operation.output_arg
        if output_arg is not None and output_arg in kwargs:
            data[output_arg] = kwargs[output_arg]
        if "stream_options" in kwargs:
            data["stream_options"] = kwargs["stream_options"]
        tagged = False
        for key in METADATA_KEYS:
            metadata = data.get(key)
            if isinstance(metadata, dict):
                metadata[CALL_ID_KEY] = call.call_id
                tagged = True
        if not tagged:
            data[call.operation.metadata_arg] = {CALL_ID_KEY: call.call_id}

    # ---- after the call ------------------------------------------------------------------
    def _take(self, data: Mapping[str, Any]) -> RoutedCall | None:
        call_id = _call_id(data)
        return self._calls.pop(call_id, None) if call_id is not None else None

    @override
    async def async_post_call_success_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
    ) -> Any:
        """Settle a non-streaming call with the exact cost of the deployment that served it."""
        call_id = _call_id(data)
        call = self._calls.get(call_id) if call_id is not None else None
        if call is None or call.stream:
            return response
        self._calls.pop(call.call_id, None)
        await self.router.arun_flow(self.router.planner.response_flow(call, response))
        return response

    @override
    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Settle a call whose proxy route runs no success hook (speech, rerank) from LiteLLM's success log."""
        call_id = _logged_call_id(kwargs) if isinstance(kwargs, Mapping) else None
        call = self._calls.get(call_id) if call_id is not None else None
        if call is None or call.stream or call.operation.name not in SETTLED_BY_LOG:
            return
        if self._calls.pop(call.call_id, None) is not None:
            await self.router.arun_flow(self.router.planner.response_flow(call, response_obj))

    @override
    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: UserAPIKeyAuth,
        traceback_str: str | None = None,
    ) -> Any:
        """Release the hold of a call that failed (or charge it, when the provider may have billed it)."""
        call = self._take(request_data)
        if call is not None:
            await self.router.arun_flow(self.router.planner.fail_flow(call, original_exception))
        return None

    @override
    async def async_post_call_streaming_iterator_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
        request_data: dict[str, Any],
    ) -> AsyncGenerator[Any, None]:
        """Pass the stream through; settle at its end, or for what was delivered when the client leaves."""
        call = self._take(request_data)
        if call is None:
            async for chunk in response:
                yield chunk
            return
        router = self.router
        tally = (call.operation.stream_tally or StreamTally)()
        end: StreamEnd = "completed"
        error: BaseException | None = None
        try:
            async for chunk in response:
                tally.observe(chunk)
                yield chunk
        except (GeneratorExit, asyncio.CancelledError):
            # The client went away (the proxy cancels the response, or closes this generator):
            # charged what it was sent, as a library caller that closes its stream early.
            end = "closed_early"
            raise
        except BaseException as exc:
            end, error = "failed", exc
            raise
        finally:
            flow = stream_finish_flow(router.planner, call, response, tally, end, error)
            await through_cancellation(router.arun_flow(flow))
