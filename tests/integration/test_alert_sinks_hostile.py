"""Issue 25, findings 7, 8 and 11 (alerts): hostile sinks and ids against real HTTP receivers on loopback.

A sink that drips its answer or hangs delays only itself; ids of any Unicode reach a webhook with a
verifiable signature; credentials in a sink URL go as basic auth; no message shows a sink's URL.
"""

from __future__ import annotations

import base64
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from costrouter import CostRouter
from costrouter.budget import BudgetPolicy, load_policy
from costrouter.budget.alerts import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AlertDispatcher,
    AlertSettings,
    BudgetAlert,
    sign,
    slack_body,
)
from costrouter.errors import ConfigError
from costrouter.testing import ProviderDouble, TelemetryCapture, WebhookReceiver
from tests.routing import router_config

ALERTS = 40
SECRET = "whsec-hostile-7c1d"


def _alert(number: int, scope_id: str = "s") -> BudgetAlert:
    return BudgetAlert(
        budget="tiny",
        scope="session",
        scope_id=f"{scope_id}-{number}",
        window_id="total",
        threshold=0.5,
        spent_usd=0.5,
        limit_usd=1.0,
        at="2026-12-06T00:00:00+00:00",
    )


def _settings(sinks: list[dict[str, Any]], **options: Any) -> AlertSettings:
    return AlertSettings.model_validate({"sinks": sinks, "backoff_seconds": 0.05, **options})


def _eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


@pytest.fixture
def healthy() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.mark.parametrize("stall", ["drip", "hang"])
def test_a_slow_sink_never_holds_back_a_healthy_one_and_shutdown_is_bounded(
    stall: str, healthy: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with WebhookReceiver(stall=stall) as slow:  # type: ignore[arg-type]
        dispatcher = AlertDispatcher(
            _settings([{"type": "webhook", "url": slow.url, "name": "slow"}, {"type": "slack", "url": healthy.url}])
        )
        for number in range(ALERTS):
            dispatcher.submit(_alert(number))
        # The red team saw 0 of 40 (drip) and 5 of 40 (hang) here, even after shutdown.
        assert len(healthy.wait_for(ALERTS)) == ALERTS
        slow.wait_for(1)
        with caplog.at_level(logging.WARNING, logger="costrouter.alerts"):
            dispatcher.close()  # returns although the slow sink has not answered once
        _eventually(
            lambda: dispatcher.stats_of("slow").failed + dispatcher.stats_of("slow").dropped == ALERTS,
            "every alert of the slow sink accounted for after close()",
        )
    assert dispatcher.stats_of("slack").sent == ALERTS
    assert dispatcher.stats_of("slow").sent == 0
    assert dispatcher.stats_of("slow").dropped >= 1
    assert any("dropped: not delivered by shutdown" in record.getMessage() for record in caplog.records)


def test_a_dripping_answer_is_cut_off_by_the_total_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with WebhookReceiver(stall="drip", drip_seconds=0.2) as drip:
        dispatcher = AlertDispatcher(_settings([{"type": "webhook", "url": drip.url, "name": "drip"}], max_attempts=1))
        with caplog.at_level(logging.WARNING, logger="costrouter.alerts"):
            dispatcher.submit(_alert(0))
            # The answer drips for as long as the receiver runs (a per-read timeout never fires):
            # only a total deadline ends this delivery.
            assert dispatcher.flush(timeout=60)
        dispatcher.close()
    assert (dispatcher.stats.sent, dispatcher.stats.failed) == (0, 1)
    (line,) = [record.getMessage() for record in caplog.records if "failed after" in record.getMessage()]
    assert "no complete answer within 5 s" in line
    assert "127.0.0.1" not in line


@pytest.mark.parametrize("scope_id", ["user-😀", "会话-1", "line\r\nX-Injected: yes", "tab\tand %41 percent"])
def test_any_id_reaches_the_webhook_percent_encoded_with_a_valid_signature(
    scope_id: str, healthy: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSTROUTER_TEST_HOSTILE_SECRET", SECRET)
    dispatcher = AlertDispatcher(
        _settings([{"type": "webhook", "url": healthy.url, "secret": "os.environ/COSTROUTER_TEST_HOSTILE_SECRET"}])
    )
    alert = BudgetAlert("tiny", "session", scope_id, "total", 1.0, 1.0, 1.0, "2026-12-06T00:00:00+00:00")
    dispatcher.submit(alert)
    assert dispatcher.flush()
    dispatcher.close()
    (request,) = healthy.wait_for(1)  # the red team saw UnicodeEncodeError and no request at all
    assert dispatcher.stats.sent == 1
    header = request.headers[ALERT_ID_HEADER]
    assert header.isascii()
    assert "\r" not in header
    assert "\n" not in header
    assert "X-Injected" not in request.headers
    assert unquote(header) == request.json()["id"] == alert.id
    expected = sign(SECRET, int(request.headers[TIMESTAMP_HEADER]), request.body)
    assert hmac.compare_digest(request.headers[SIGNATURE_HEADER], expected)


def test_unicode_session_ids_alert_end_to_end_through_the_router(
    provider: ProviderDouble, capture: TelemetryCapture, healthy: WebhookReceiver
) -> None:
    provider.reset()
    budgets = {
        "store": {"backend": "memory"},
        "budgets": [
            {"name": "tiny", "scope": "session", "limit_usd": 0.00001, "on_exceeded": "warn", "alert_at": [1.0]}
        ],
        "alerts": {"sinks": [{"type": "webhook", "url": healthy.url}]},
    }
    router = CostRouter(
        router_config(provider.base_url),
        budgets=budgets,
        tracer_provider=capture.tracer_provider,
        meter_provider=capture.meter_provider,
    )
    for session in ("user-😀", "会话-1"):
        router.route_completion("fast", [{"role": "user", "content": "hi"}], max_tokens=10, session_id=session)
    assert router.alerts.flush()
    router.shutdown()
    received = healthy.wait_for(2)
    assert sorted(request.json()["scope_id"] for request in received) == sorted(["user-😀", "会话-1"])
    assert all(unquote(r.headers[ALERT_ID_HEADER]) == r.json()["id"] for r in received)
    assert router.alerts.stats.failed == 0


def test_credentials_in_a_webhook_url_go_as_basic_auth(healthy: WebhookReceiver) -> None:
    url = healthy.url.replace("http://", "http://ops%40example:p%3Ass@")
    dispatcher = AlertDispatcher(_settings([{"type": "webhook", "url": url}]))
    dispatcher.submit(_alert(0))
    assert dispatcher.flush()
    dispatcher.close()
    (request,) = healthy.wait_for(1)  # the red team saw the request arrive with no credentials
    assert request.path == "/hook"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"ops@example:p:ss").decode()


def test_a_sink_url_with_a_stray_space_is_refused_at_load_without_showing_it() -> None:
    policy = {
        "budgets": [],
        "alerts": {"sinks": [{"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/ canary-token"}]},
    }
    with pytest.raises(ValueError, match="space or a control character") as raised:
        BudgetPolicy.model_validate(policy)
    assert "canary" not in str(raised.value)


def test_a_policy_file_with_a_bad_sink_url_names_field_and_reason_only(tmp_path: Any) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(
        "budgets: []\nalerts:\n  sinks:\n    - type: slack\n"
        "      url: 'https://u:canary-pw@hooks.slack.com/services/T0/B0/canary-token '\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_policy(path)
    text = str(raised.value)
    assert "alerts.sinks[0].slack.url" in text
    assert "space or a control character" in text
    assert "canary" not in text
    assert "canary" not in repr(raised.value.__cause__)


def test_a_bad_url_from_the_environment_fails_the_sink_without_showing_it(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSTROUTER_TEST_SLACK_URL", "https://hooks.slack.com/services/T0/B0/ canary-token")
    dispatcher = AlertDispatcher(_settings([{"type": "slack", "url": "os.environ/COSTROUTER_TEST_SLACK_URL"}]))
    with caplog.at_level(logging.WARNING, logger="costrouter.alerts"):
        dispatcher.submit(_alert(0))
        assert dispatcher.flush()
    dispatcher.close()
    assert dispatcher.stats.failed == 1
    assert dispatcher.stats.retried == 0  # a URL that cannot work is not tried again
    messages = [record.getMessage() for record in caplog.records]
    assert any("failed after 1 tries: the URL contains a space or a control character" in m for m in messages)
    assert not any("canary" in message or "hooks.slack.com" in message for message in messages)


def test_slack_text_cannot_mention_the_channel() -> None:
    text = slack_body(_alert(0, scope_id="<!channel> <https://evil.example|click>`")).decode()
    assert "<!channel>" not in text
    assert "<https://evil" not in text
    assert "&lt;!channel&gt;" in text
