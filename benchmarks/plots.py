"""Latency and throughput by concurrency (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import variants

_BARE = "Router (bare)"


def _series(rows: Sequence[dict[str, Any]], mode: str, transport: str) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    series: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for row in rows:
        if row["mode"] == mode and row["transport"] == transport:
            series.setdefault(row["variant"], []).append((row["concurrency"], row))
    return {name: sorted(points, key=lambda p: p[0]) for name, points in series.items()}


def _panels(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    present = {(r["mode"], r["transport"]) for r in rows}
    return [p for p in (("async", "http"), ("sync", "http"), ("async", "mock"), ("sync", "mock")) if p in present]


def latency(rows: Sequence[dict[str, Any]], path: Path) -> None:
    panels = _panels(rows)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (mode, transport) in zip(axes[0], panels, strict=True):
        series = _series(rows, mode, transport)
        bare = _bare(series)
        xs = [c for c, _ in bare]
        ax.plot(xs, [r["bare_p50_us"] / 1000 for _, r in bare], "k-o", label=f"{_BARE} p50")
        ax.plot(xs, [r["bare_p99_us"] / 1000 for _, r in bare], "k:", label=f"{_BARE} p99")
        for name, points in series.items():
            xs = [c for c, _ in points]
            line = ax.plot(xs, [r["p50_us"] / 1000 for _, r in points], "-o", label=f"{variants.LABELS[name]} p50")
            ax.plot(xs, [r["p99_us"] / 1000 for _, r in points], ":", color=line[0].get_color())
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrency")
        ax.set_ylabel("latency per call, ms (p50 solid, p99 dotted)")
        ax.set_title(f"{mode} path, {'provider double (HTTP)' if transport == 'http' else 'mock_response'}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _bare(series: dict[str, list[tuple[int, dict[str, Any]]]]) -> list[tuple[int, dict[str, Any]]]:
    """The bare Router's numbers: each worker measured its own; take the median across workers."""
    by_concurrency: dict[int, list[dict[str, Any]]] = {}
    for points in series.values():
        for concurrency, row in points:
            by_concurrency.setdefault(concurrency, []).append(row)
    merged = []
    for concurrency, group in sorted(by_concurrency.items()):
        keys = ("bare_p50_us", "bare_p99_us", "bare_throughput")
        merged.append((concurrency, {key: sorted(r[key] for r in group)[len(group) // 2] for key in keys}))
    return merged


def throughput(rows: Sequence[dict[str, Any]], path: Path) -> None:
    panels = _panels(rows)
    fig, axes = plt.subplots(2, len(panels), figsize=(6 * len(panels), 8), squeeze=False)
    for column, (mode, transport) in enumerate(panels):
        series = _series(rows, mode, transport)
        bare = _bare(series)
        top, bottom = axes[0][column], axes[1][column]
        top.plot([c for c, _ in bare], [r["bare_throughput"] for _, r in bare], "k-o", label=_BARE)
        for name, points in series.items():
            xs = [c for c, _ in points]
            top.plot(xs, [r["throughput"] for _, r in points], "-o", label=variants.LABELS[name])
            bottom.plot(xs, [r["throughput_ratio"] for _, r in points], "-o", label=variants.LABELS[name])
        bottom.axhline(0.95, color="red", linestyle="--", linewidth=1, label="target 0.95 (c=64)")
        bottom.axhline(1.0, color="black", linewidth=0.8)
        title = f"{mode} path, {'provider double (HTTP)' if transport == 'http' else 'mock_response'}"
        top.set_title(title)
        top.set_ylabel("calls per second (client)")
        bottom.set_ylabel("throughput / bare Router (same process, paired)")
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrency")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def overhead(layer_rows: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Added p50 at concurrency 1: end to end (paired), and costrouter's own layer (stubbed Router)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = [v.name for v in variants.VARIANTS]
    width = 0.25
    end_to_end = {
        r["variant"]: r["added_p50_us"]
        for r in rows
        if r["mode"] == "async" and r["transport"] == "http" and r["concurrency"] == 1
    }
    mock = {
        r["variant"]: r["added_p50_us"]
        for r in rows
        if r["mode"] == "async" and r["transport"] == "mock" and r["concurrency"] == 1
    }
    layer = {r["variant"]: r["p50_us"] for r in layer_rows if r["mode"] == "async"}
    xs = range(len(names))
    ax.bar([x - width for x in xs], [end_to_end.get(n, 0) for n in names], width, label="added p50, HTTP (paired)")
    ax.bar(list(xs), [mock.get(n, 0) for n in names], width, label="added p50, mock_response (paired)")
    ax.bar([x + width for x in xs], [layer.get(n, 0) for n in names], width, label="costrouter layer alone p50")
    ax.axhline(150, color="red", linestyle="--", linewidth=1, label="target 150 µs")
    ax.set_xticks(list(xs), [variants.LABELS[n] for n in names], rotation=15, fontsize=8)
    ax.set_ylabel("µs per call, async, concurrency 1")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
