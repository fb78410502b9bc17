"""Attempts of one routed call when LiteLLM's proxy gives them all one call id."""

from __future__ import annotations

from costrouter.otel.attempts import CallRecord


def test_attempts_sharing_a_call_id_are_told_apart_by_key() -> None:
    record = CallRecord("call", group="flaky")
    record.start("flaky", "flaky-1", "m", "shared", key="shared|flaky|flaky-1|0")
    record.start("flaky", "flaky-1", "m", "shared", key="shared|flaky|flaky-1|0")  # the same attempt again
    record.start("flaky", "flaky-1", "m", "shared", key="shared|flaky|flaky-1|1")
    record.start("chat", "chat-1", "m", "shared", key="shared|chat|chat-1|0")

    assert [attempt.kind for attempt in record.attempts] == ["first", "retry", "fallback"]


def test_a_late_failure_closes_the_oldest_open_attempt_and_success_the_newest() -> None:
    record = CallRecord("call", group="flaky")
    record.start("flaky", "flaky-1", "m", "shared", key="a")
    record.start("chat", "chat-1", "m", "shared", key="b")  # started before the first's failure arrived

    record.finish("shared", "failure")
    record.finish("shared", "success")

    assert [attempt.outcome for attempt in record.attempts] == ["failure", "success"]


def test_without_a_key_the_call_id_keeps_an_attempt_idempotent() -> None:
    record = CallRecord("call")
    record.start("g", "d", "m", "id-1")
    record.start("g", "d", "m", "id-1")

    assert len(record.attempts) == 1
