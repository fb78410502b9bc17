"""Which failed calls are charged their hold: the decision alone."""

from __future__ import annotations

import asyncio

import httpx
import litellm
import pytest

from costrouter.budget.reserving import Reservation
from costrouter.otel.attempts import Attempt
from costrouter.routing.interruptions import (
    interrupted_call_charge,
    interrupted_stream_charge,
    is_interruption,
    never_sent,
)

HOLD = 1234


def attempt(outcome: str = "pending", error_type: str | None = None) -> Attempt:
    made = Attempt(0, "first", "fast", "fast-0", "openai/x", "id", 0)
    made.outcome = outcome  # type: ignore[assignment]
    made.error_type = error_type
    return made


def timeout(cause: BaseException | None = None) -> litellm.Timeout:
    error = litellm.Timeout("timed out", model="x", llm_provider="openai")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "error", [asyncio.CancelledError(), KeyboardInterrupt(), TimeoutError(), timeout(httpx.ReadTimeout("read"))]
)
def test_interruptions_after_an_attempt_started_charge_the_hold(error: BaseException) -> None:
    assert is_interruption(error)
    assert interrupted_call_charge(error, [attempt()], Reservation("c", [], HOLD), "charge_hold") == HOLD


def test_each_timed_out_attempt_is_charged_one_hold() -> None:
    attempts = [attempt("failure", "Timeout"), attempt("failure", "InternalServerError"), attempt("failure", "Timeout")]
    assert interrupted_call_charge(timeout(), attempts, Reservation("c", [], HOLD), "charge_hold") == 2 * HOLD


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (asyncio.CancelledError(), []),  # cancelled before LiteLLM started an attempt
        (timeout(httpx.ConnectTimeout("connect")), [attempt()]),  # never connected: never sent
        (timeout(httpx.ConnectError("refused")), [attempt()]),
        (litellm.InternalServerError("500", llm_provider="openai", model="x"), [attempt("failure", "X")]),
        (ValueError("bad"), [attempt()]),
    ],
)
def test_calls_that_never_reached_a_provider_or_were_answered_charge_nothing(
    error: BaseException, attempts: list[Attempt]
) -> None:
    assert interrupted_call_charge(error, attempts, Reservation("c", [], HOLD), "charge_hold") is None


def test_the_release_policy_and_unbudgeted_or_refused_calls_charge_nothing() -> None:
    error = asyncio.CancelledError()
    assert interrupted_call_charge(error, [attempt()], Reservation("c", [], HOLD), "release") is None
    assert interrupted_call_charge(error, [attempt()], None, "charge_hold") is None
    assert (
        interrupted_call_charge(error, [attempt()], Reservation("c", [], HOLD, outcome="rejected"), "charge_hold")
        is None
    )


def test_a_connect_failure_deep_in_the_chain_counts_as_never_sent() -> None:
    inner = ConnectionRefusedError()
    middle = RuntimeError("wrapped")
    middle.__context__ = inner
    assert never_sent(timeout(middle))
    assert not never_sent(timeout(RuntimeError("read")))


def test_an_interrupted_stream_is_charged_at_least_its_hold() -> None:
    reservation = Reservation("c", [], HOLD)
    assert interrupted_stream_charge(KeyboardInterrupt(), 10, reservation, "charge_hold") == HOLD
    assert interrupted_stream_charge(KeyboardInterrupt(), 2 * HOLD, reservation, "charge_hold") == 2 * HOLD
    assert interrupted_stream_charge(None, 10, reservation, "charge_hold") is None
    assert (
        interrupted_stream_charge(litellm.APIConnectionError("cut", "openai", "x"), 10, reservation, "charge_hold")
        is None
    )
    assert interrupted_stream_charge(KeyboardInterrupt(), 10, reservation, "release") is None
