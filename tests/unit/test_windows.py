"""Window parsing and the period that contains a moment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costrouter.config.windows import Window, parse_window, window_at, window_id

# 1970-01-01 .. 2200-01-01
moments = st.floats(min_value=0, max_value=7_258_118_400, allow_nan=False, allow_infinity=False)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "kind", "seconds"),
    [
        ("total", "total", 0),
        ("daily", "daily", 0),
        ("monthly", "monthly", 0),
        ("30s", "fixed", 30),
        ("15m", "fixed", 900),
        ("1h", "fixed", 3600),
        ("30d", "fixed", 2_592_000),
        (" 1d ", "fixed", 86400),
    ],
)
def test_parse_window_accepts_the_documented_forms(text: str, kind: str, seconds: int) -> None:
    spec = parse_window(text)
    assert (spec.kind, spec.seconds, spec.text) == (kind, seconds, text.strip())


@pytest.mark.parametrize("text", ["", "0h", "1w", "h", "-1d", "1.5h", "weekly", "1 h", "01h", "Daily"])
def test_parse_window_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="window must be"):
        parse_window(text)


def test_total_never_ends() -> None:
    assert window_at(parse_window("total"), at("2024-06-01T12:00:00")) == Window("total", None)


def test_fixed_windows_are_aligned_to_the_epoch() -> None:
    spec = parse_window("1h")
    start = at("2024-06-01T12:00:00")
    assert window_at(spec, start + 3599.999) == Window(str(int(start)), int(start) + 3600)
    assert window_id(spec, start - 0.001) == str(int(start) - 3600)


@pytest.mark.parametrize(
    ("moment", "daily", "monthly", "month_end"),
    [
        ("2024-02-29T23:59:59", "2024-02-29", "2024-02", "2024-03-01"),
        ("2024-03-01T00:00:00", "2024-03-01", "2024-03", "2024-04-01"),
        ("2023-12-31T23:59:59", "2023-12-31", "2023-12", "2024-01-01"),
        ("2100-02-28T10:00:00", "2100-02-28", "2100-02", "2100-03-01"),
        ("1970-01-01T00:00:00", "1970-01-01", "1970-01", "1970-02-01"),
    ],
)
def test_calendar_windows_are_utc_dates(moment: str, daily: str, monthly: str, month_end: str) -> None:
    now = at(moment)
    day = window_at(parse_window("daily"), now)
    month = window_at(parse_window("monthly"), now)
    assert day.id == daily
    assert day.end == at(daily + "T00:00:00") + 86400
    assert month == Window(monthly, int(at(month_end + "T00:00:00")))


@given(now=moments, count=st.integers(min_value=1, max_value=90), unit=st.sampled_from("smhd"))
def test_a_fixed_window_contains_its_moment(now: float, count: int, unit: str) -> None:
    spec = parse_window(f"{count}{unit}")
    window = window_at(spec, now)
    assert window.end is not None
    assert int(window.id) <= now < window.end
    assert window.end - int(window.id) == spec.seconds
    assert int(window.id) % spec.seconds == 0


@given(now=moments)
def test_a_calendar_window_contains_its_moment(now: float) -> None:
    moment = datetime.fromtimestamp(now, UTC)
    for text in ("daily", "monthly"):
        window = window_at(parse_window(text), now)
        assert window.end is not None
        assert now < window.end
        assert moment.isoformat().startswith(window.id)
        assert window_id(parse_window(text), window.end) != window.id
