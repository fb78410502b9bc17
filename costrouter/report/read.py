"""Stream a span file into a report: memory in proportion to the rows, never to the spans.

The file is cut into byte ranges at line starts; each range is counted on its own
(:mod:`costrouter.report_scan`, which settles the joins of attempts and calls across range
bounds), on several cores for a large file, and the partial totals are added up. Sums are
integers (cost in 1e-12 USD, latency in ns), so the report is the same, byte for byte,
however the file was cut. A line that is not a span record, or a call or attempt span with a
field a report cannot count, is skipped and counted, and the first few are named
(``file:line: reason``). A last line cut short (the writer died) is one of them.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import threading
from collections.abc import Sequence
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Final

from costrouter.report.cpus import usable_cpus
from costrouter.report.file_lines import skip_line
from costrouter.report.records import RECENT_CALLS, Dimension
from costrouter.report.scan import MAX_PROBLEMS_SHOWN, Partial, scan_range
from costrouter.report.summary import Report, ReportRow, ordered_breakdown

__all__ = ["MAX_PROBLEMS_SHOWN", "PARALLEL_MIN_BYTES", "split_ranges", "stream_report"]

PARALLEL_MIN_BYTES: Final = 64 << 20
"""Files smaller than this are read by one process: starting others would cost more than it saves."""


def split_ranges(path: str | Path, chunk_bytes: int) -> list[tuple[int, int]]:
    """``[start, end)`` byte ranges of about ``chunk_bytes`` each, every bound at a line start."""
    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as handle:
        position = chunk_bytes
        while position < size:
            handle.seek(position - 1)
            skip_line(handle)  # to the end of the line holding the byte before ``position``
            bound = handle.tell()
            if bound >= size:
                break
            if bound > bounds[-1]:
                bounds.append(bound)
            position = max(bound, position) + chunk_bytes
    bounds.append(size)
    return [(start, end) for start, end in itertools.pairwise(bounds) if end > start] or [(0, size)]


def _context() -> BaseContext:
    """``fork`` where it is safe (one thread: the command), else ``spawn``."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _merge_rows(into: dict[tuple[str | None, ...], ReportRow], rows: dict[tuple[str | None, ...], ReportRow]) -> None:
    for key, row in rows.items():
        mine = into.get(key)
        if mine is None:
            into[key] = row
        else:
            mine.merge(row)


def stream_report(
    path: str | Path,
    breakdowns: Sequence[Sequence[Dimension]],
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    workers: int | None = None,
    chunk_bytes: int | None = None,
    recent: int = RECENT_CALLS,
) -> Report:
    """Read ``path`` once and aggregate the routed calls that started in ``[since, until)``.

    ``workers``: processes that count ranges at the same time (default: one per CPU this
    process may use, its affinity and cgroup quota counted, for a file of
    :data:`PARALLEL_MIN_BYTES` or more, else none besides this one); ``chunk_bytes``:
    the size of a range (default: the file split evenly among the workers). Neither changes
    the result. ``OSError`` when the file cannot be read; bad lines never raise.
    """
    source = str(path)
    size = os.path.getsize(path)
    if workers is None:
        workers = usable_cpus() if size >= PARALLEL_MIN_BYTES else 1
    workers = max(1, workers)
    ranges = split_ranges(path, chunk_bytes or max(1, -(-size // workers)))
    jobs = [(path, start, end, breakdowns, since_ns, until_ns, recent) for start, end in ranges]
    if workers == 1 or len(jobs) == 1:
        partials = [scan_range(*job) for job in jobs]
    else:
        # With a range per worker, this process counts the first itself while the others
        # count the rest: one process fewer to start, and one partial fewer to pickle over.
        collecting = gc.isenabled()
        gc.disable()  # the partials unpickled here hold ~10**5 rows: no cycles to look for
        try:
            if len(jobs) <= workers:
                with _context().Pool(len(jobs) - 1) as pool:
                    others = pool.starmap_async(scan_range, jobs[1:], chunksize=1)
                    partials = [scan_range(*jobs[0]), *others.get()]
            else:
                with _context().Pool(workers) as pool:
                    partials = pool.starmap(scan_range, jobs, chunksize=1)
        finally:
            if collecting:
                gc.enable()
    return _merged(source, partials, breakdowns, since_ns, until_ns)


def _merged(
    source: str,
    partials: list[Partial],
    breakdowns: Sequence[Sequence[Dimension]],
    since_ns: int | None,
    until_ns: int | None,
) -> Report:
    """One report from the partial totals of consecutive ranges."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        first, *others = partials
        problems: list[str] = []
        lines = 0
        for partial in partials:
            problems.extend(f"{source}:{lines + number}: {reason}" for number, reason in partial.problems)
            lines += partial.lines
        for partial in others:
            _merge_rows(first.total, partial.total)
            for rows, more in zip(first.rows, partial.rows, strict=True):
                _merge_rows(rows, more)
            first.timeline.merge(partial.timeline)
        totals = ordered_breakdown((), first.total).rows
        return Report(
            source=source,
            spans=sum(partial.spans for partial in partials),
            calls=(),
            breakdowns=tuple(
                ordered_breakdown(dimensions, rows) for dimensions, rows in zip(breakdowns, first.rows, strict=True)
            ),
            total=totals[0] if totals else ReportRow(()),
            skipped=sum(partial.skipped for partial in partials),
            problems=tuple(problems[:MAX_PROBLEMS_SHOWN]),
            orphan_attempts=sum(partial.orphans for partial in partials),
            timeline=first.timeline,
            since_ns=since_ns,
            until_ns=until_ns,
        )
    finally:
        if collecting:
            gc.enable()
