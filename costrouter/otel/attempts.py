"""The per-call attempt record, filled by a LiteLLM CustomLogger.

LiteLLM runs success callbacks outside the caller's context (a logging thread, a
detached task), so nothing here looks at "the current span": every callback finds
its routed call by the ``costrouter_call_id`` that the router puts in the request's
``metadata``. Pre-call and failure callbacks run in the caller's flow, before the
next attempt starts, so the record is complete when the Router call returns.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import litellm
from litellm.integrations.custom_logger import CustomLogger
from typing_extensions import override

CALL_ID_KEY = "costrouter_call_id"

AttemptKind = Literal["first", "retry", "fallback"]


@dataclass
class Attempt:
    """One provider request of a routed call."""

    index: int
    kind: AttemptKind
    model_group: str
    deployment_id: str
    model: str
    litellm_call_id: str
    start_ns: int
    wait_ns: int = 0
    end_ns: int | None = None
    outcome: Literal["pending", "success", "failure"] = "pending"
    error_type: str | None = None
    error_message: str | None = None
    key: str = ""
    """What tells this attempt from the call's others (LiteLLM's call id, unless the proxy shares it)."""


@dataclass
class CallRecord:
    """Every attempt of one routed call, in order."""

    call_id: str
    group: str = ""
    """The model group the Router was asked for; an attempt elsewhere is a fallback."""
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def retries(self) -> int:
        """Attempts that retried the same model group."""
        return sum(1 for attempt in self.attempts if attempt.kind == "retry")

    @property
    def fallbacks(self) -> int:
        """Attempts that moved to another model group."""
        return sum(1 for attempt in self.attempts if attempt.kind == "fallback")

    def start(
        self, model_group: str, deployment_id: str, model: str, litellm_call_id: str, key: str | None = None
    ) -> None:
        """Open an attempt (idempotent per ``key``, by default the LiteLLM call id).

        LiteLLM's proxy gives every attempt of a request the request's call id, so the
        tracker keys attempts by call id, group, deployment and retry number.
        """
        now = time.time_ns()
        key = key or litellm_call_id
        with self.lock:
            if any(a.key == key for a in self.attempts):
                return
            previous = self.attempts[-1] if self.attempts else None
            # A group whose deployments are all cooling down is skipped without an attempt:
            # the first attempt then already lands in a fallback group.
            kind: AttemptKind = "fallback" if self.group and model_group != self.group else "first"
            wait_ns = 0
            if previous is not None:
                kind = "retry" if previous.model_group == model_group else "fallback"
                wait_ns = max(0, now - (previous.end_ns or now))
            self.attempts.append(
                Attempt(
                    len(self.attempts), kind, model_group, deployment_id, model, litellm_call_id, now, wait_ns, key=key
                )
            )

    def finish(
        self,
        litellm_call_id: str | None,
        outcome: Literal["success", "failure"],
        error: BaseException | None = None,
    ) -> None:
        """Close an open attempt with this LiteLLM call id (any open one for ``None``).

        Of several open attempts sharing the id (the proxy's), a failure closes the oldest
        (failure events may arrive after the next attempt started), a success the newest.
        """
        now = time.time_ns()
        with self.lock:
            attempt = self._find(litellm_call_id, oldest=outcome == "failure")
            if attempt is None:
                return
            attempt.end_ns = now
            attempt.outcome = outcome
            if error is not None:
                attempt.error_type = type(error).__name__
                attempt.error_message = str(error)[:500]

    def close_pending(self, outcome: Literal["success", "failure"], error: BaseException | None) -> None:
        """Close every attempt still open (the call ended without their callback)."""
        for attempt in list(self.attempts):
            if attempt.outcome == "pending":
                self.finish(attempt.litellm_call_id, outcome, error)

    def _find(self, litellm_call_id: str | None, *, oldest: bool) -> Attempt | None:
        pending = [
            attempt
            for attempt in self.attempts
            if attempt.outcome == "pending" and litellm_call_id in (None, attempt.litellm_call_id)
        ]
        if not pending:
            return None
        return pending[0] if oldest else pending[-1]


def _metadata(kwargs: dict[str, Any]) -> dict[str, Any]:
    params = kwargs.get("litellm_params") or {}
    metadata = params.get("metadata") or kwargs.get("metadata") or {}
    return metadata if isinstance(metadata, dict) else {}


class AttemptTracker(CustomLogger):
    """Records attempts into the :class:`CallRecord` named by the request's metadata."""

    def __init__(self) -> None:
        super().__init__()
        self._records: dict[str, CallRecord] = {}
        self._lock = threading.Lock()

    def open(self, call_id: str) -> CallRecord:
        """Start recording the routed call ``call_id``."""
        record = CallRecord(call_id)
        with self._lock:
            self._records[call_id] = record
        return record

    def close(self, call_id: str) -> None:
        """Stop recording ``call_id``; late callbacks for it are ignored."""
        with self._lock:
            self._records.pop(call_id, None)

    def _record_for(self, kwargs: dict[str, Any]) -> tuple[CallRecord | None, dict[str, Any]]:
        metadata = _metadata(kwargs)
        call_id = metadata.get(CALL_ID_KEY)
        if not isinstance(call_id, str):
            return None, metadata
        with self._lock:
            return self._records.get(call_id), metadata

    # ---- LiteLLM hooks ---------------------------------------------------------------
    @override
    def log_pre_api_call(self, model: str, messages: Any, kwargs: dict[str, Any]) -> None:
        """Open an attempt: LiteLLM is about to send a request to a deployment."""
        record, metadata = self._record_for(kwargs)
        if record is None:
            return
        model_info = metadata.get("model_info") or {}
        model_group = str(metadata.get("model_group") or "")
        deployment_id = str(model_info.get("id") or "")
        litellm_call_id = str(kwargs.get("litellm_call_id") or "")
        retry = metadata.get("attempted_retries")
        record.start(
            model_group=model_group,
            deployment_id=deployment_id,
            model=str(model),
            litellm_call_id=litellm_call_id,
            key=f"{litellm_call_id}|{model_group}|{deployment_id}|{retry}",
        )

    @override
    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Close the attempt as failed (sync calls)."""
        record, _ = self._record_for(kwargs)
        if record is not None:
            error = kwargs.get("exception")
            record.finish(kwargs.get("litellm_call_id"), "failure", error if isinstance(error, BaseException) else None)

    @override
    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Close the attempt as failed (async calls; awaited before the next attempt)."""
        self.log_failure_event(kwargs, response_obj, start_time, end_time)


_TRACKER = AttemptTracker()
_REGISTRATION_LOCK = threading.Lock()


def attempt_tracker() -> AttemptTracker:
    """The process-wide tracker, registered once in the lists of the hooks it implements.

    Not in ``litellm.callbacks``: LiteLLM copies an entry there into its success lists too,
    and dispatches every success to it, through no-op hooks, at about 0.1 M instructions a call.
    """
    with _REGISTRATION_LOCK:
        for hooks in (litellm.input_callback, litellm.failure_callback, litellm._async_failure_callback):
            if _TRACKER not in hooks:
                hooks.append(_TRACKER)
    return _TRACKER
