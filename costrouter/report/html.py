"""A report as one self-contained HTML page: totals, cost over time by group, top sessions, tables.

No script, no stylesheet or font from elsewhere: the charts are inline SVG, so the page
opens from a file, an e-mail attachment or an air-gapped machine alike. Every value taken
from a span (group, session, user …) is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Final

from costrouter.report.records import PICO
from costrouter.report.summary import (
    NONE_LABEL,
    Breakdown,
    Report,
    ReportRow,
    breakdown_title,
    format_usd,
)

__all__ = ["ROWS_SHOWN", "report_html"]

ROWS_SHOWN: Final = 200
"""Rows of a breakdown table on the page; the rest are counted."""
_PALETTE: Final = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
_STYLE: Final = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px 32px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#59636e;margin-bottom:16px}.warn{color:#9a6700}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #d1d9e0;border-radius:8px;padding:10px 16px;min-width:130px}
.card b{display:block;font-size:20px}.card span{color:#59636e}
table{border-collapse:collapse;margin:4px 0 8px}
th,td{border-bottom:1px solid #d1d9e0;padding:4px 10px;text-align:right;white-space:nowrap}
th{background:#f6f8fa}td.key,th.key{text-align:left}tfoot td{font-weight:600}
svg text{font:11px system-ui,sans-serif;fill:#59636e}.legend span{margin-right:14px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
"""


def _usd(pico: int) -> str:
    return format_usd(pico / PICO)


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _cards(report: Report) -> str:
    total = report.total
    p95 = total.latency_ms_p95
    cards = [
        ("total cost", _usd(total.cost_pico)),
        ("routed calls", f"{total.calls:,}"),
        ("failed / rejected", f"{total.failed:,} / {total.rejected:,}"),
        ("tokens in / out", f"{total.input_tokens:,} / {total.output_tokens:,}"),
        ("p95 latency", "-" if p95 is None else f"{p95:,.0f} ms"),
    ]
    body = "".join(
        f'<div class="card" data-card="{escape(name)}"><b>{escape(value)}</b><span>{escape(name)}</span></div>'
        for name, value in cards
    )
    return f'<div class="cards">{body}</div>'


def _timeline_svg(report: Report) -> str:
    timeline = report.timeline
    if timeline is None:
        return "<p>No timeline: the report was not read from a span file.</p>"
    starts, groups = timeline.series()
    if not starts:
        return "<p>No calls in the window.</p>"
    width, height, left, bottom = 900, 260, 70, 30
    plot_w, plot_h = width - left - 10, height - bottom - 10
    totals = [sum(row[index] for row in groups.values()) for index in range(len(starts))]
    peak = max(totals) or 1
    bar_w = plot_w / len(starts)
    parts = [f'<svg id="cost-over-time" width="{width}" height="{height}" role="img" aria-label="cost over time">']
    parts.append(f'<text x="4" y="16">{escape(_usd(peak))}</text><text x="4" y="{10 + plot_h}">$0</text>')
    parts.append(f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 10}" y2="{10 + plot_h}" stroke="#d1d9e0"/>')
    colours = {group: _PALETTE[index % len(_PALETTE)] for index, group in enumerate(groups)}
    for index in range(len(starts)):
        y = 10.0 + plot_h
        for group, row in groups.items():
            if not row[index]:
                continue
            bar_h = row[index] / peak * plot_h
            y -= bar_h
            x = left + index * bar_w
            title = f"{group}: {_usd(row[index])} from {_time(starts[index])}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}" height="{bar_h:.1f}" '
                f'fill="{colours[group]}"><title>{escape(title)}</title></rect>'
            )
    parts.append(f'<text x="{left}" y="{height - 8}">{escape(_time(starts[0]))}</text>')
    parts.append(f'<text x="{width - 10}" y="{height - 8}" text-anchor="end">{escape(_time(starts[-1]))}</text>')
    parts.append("</svg>")
    legend = "".join(
        f'<span><i class="swatch" style="background:{colours[group]}"></i>{escape(group)} '
        f"{escape(_usd(sum(row)))}</span>"
        for group, row in groups.items()
    )
    step = (starts[1] - starts[0]) // 1_000_000_000 if len(starts) > 1 else timeline.bucket_seconds
    caption = f'<p class="meta">each bar: {escape(_duration(step))} (UTC)</p>'
    return caption + "".join(parts) + f'<div class="legend">{legend}</div>'


def _top_sessions_svg(report: Report, top: int) -> str:
    sessions = next((b for b in report.breakdowns if b.dimensions == ("session",)), None)
    rows = [row for row in sessions.rows if row.key[0] is not None][:top] if sessions else []
    if not rows:
        return "<p>No calls with a session id.</p>"
    width, row_h, left = 900, 22, 220
    peak = rows[0].cost_pico or 1
    parts = [f'<svg id="top-sessions" width="{width}" height="{row_h * len(rows) + 4}" role="img">']
    for index, row in enumerate(rows):
        y = index * row_h + 2
        bar = max(row.cost_pico / peak * (width - left - 120), 1)
        name = str(row.key[0])
        shown = name if len(name) <= 32 else name[:31] + "…"
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(shown)}</text>'
            f'<rect x="{left}" y="{y}" width="{bar:.1f}" height="{row_h - 6}" fill="{_PALETTE[0]}">'
            f"<title>{escape(name)}</title></rect>"
            f'<text x="{left + bar + 6:.1f}" y="{y + 14}">{escape(_usd(row.cost_pico))} · {row.calls:,} calls</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_COLUMNS: Final[tuple[tuple[str, Callable[[ReportRow], str]], ...]] = (
    ("calls", lambda row: f"{row.calls:,}"),
    ("failed", lambda row: f"{row.failed:,}"),
    ("rejected", lambda row: f"{row.rejected:,}"),
    ("attempts", lambda row: f"{row.attempts:,}"),
    ("retries", lambda row: f"{row.retries:,}"),
    ("fallbacks", lambda row: f"{row.fallbacks:,}"),
    ("tokens in", lambda row: f"{row.input_tokens:,}"),
    ("tokens out", lambda row: f"{row.output_tokens:,}"),
    ("cost USD", lambda row: _usd(row.cost_pico)),
    ("p95 ms", lambda row: "-" if row.latency_ms_p95 is None else f"{row.latency_ms_p95:,.0f}"),
)


def _cells(row: ReportRow) -> str:
    return "".join(f"<td>{escape(cell(row))}</td>" for _, cell in _COLUMNS)


def _table(breakdown: Breakdown, total: ReportRow) -> str:
    head = "".join(f'<th class="key">{escape(d)}</th>' for d in breakdown.dimensions)
    head += "".join(f"<th>{escape(name)}</th>" for name, _ in _COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="key">{escape(value or NONE_LABEL)}</td>' for value in row.key)
        + _cells(row)
        + "</tr>"
        for row in breakdown.rows[:ROWS_SHOWN]
    )
    more = len(breakdown.rows) - ROWS_SHOWN
    note = f"<p>… and {more:,} more rows (use --format csv for all of them).</p>" if more > 0 else ""
    keys = len(breakdown.dimensions)
    foot = f'<tr><td class="key" colspan="{keys}">total</td>{_cells(total)}</tr>' if keys else ""
    name = escape(breakdown.name)
    return (
        f'<table id="by-{name}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody><tfoot>{foot}</tfoot></table>{note}'
    )


def report_html(report: Report, *, top: int = 10) -> str:
    """The whole page."""
    window = ""
    if report.since_ns is not None or report.until_ns is not None:
        since = _time(report.since_ns) if report.since_ns is not None else "the start"
        until = _time(report.until_ns) if report.until_ns is not None else "the end"
        window = f" · calls from {escape(since)} to {escape(until)}"
    skipped = ""
    if report.skipped:
        skipped = f'<p class="warn">{report.skipped:,} bad lines skipped (not counted in any total).</p>'
    sections = "".join(
        f"<h2>{escape(breakdown_title(breakdown))}</h2>{_table(breakdown, report.total)}"
        for breakdown in report.breakdowns
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>costrouter cost report: {escape(report.source)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>LLM cost report</h1>"
        f'<div class="meta">{escape(report.source)} · {report.spans:,} spans{window}</div>{skipped}'
        f"{_cards(report)}"
        f"<h2>Cost over time by group</h2>{_timeline_svg(report)}"
        f"<h2>Top {top} sessions by cost</h2>{_top_sessions_svg(report, top)}"
        f"{sections}</body></html>\n"
    )
