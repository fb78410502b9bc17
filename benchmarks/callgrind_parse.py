"""Read callgrind output files: the block's total and the inclusive cost of named functions.

Implements the part of the callgrind format that a dump of ``--tool=callgrind`` (one
event, ``Ir``) uses: name compression ``fn=(id) name``, ``calls=`` lines whose next cost
line is the inclusive cost of that call, and the ``totals:``/``summary:`` line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

_NAMED = re.compile(r"^\((\d+)\)(?: (.*))?$")


@dataclass
class Dump:
    """One dump: its trigger label, total instructions, and per-function self and inclusive costs."""

    path: Path
    label: str = ""
    total: int = 0
    self_cost: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    callee_cost: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def inclusive(self, function: str) -> int:
        """Self cost plus the inclusive cost of every call it made (no recursion in our trampolines)."""
        return self.self_cost.get(function, 0) + self.callee_cost.get(function, 0)


def _cost(line: str) -> int:
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 else 0


def parse(path: Path) -> Dump:
    """Parse one callgrind output file."""
    dump = Dump(path)
    names: dict[str, str] = {}
    function = ""
    pending_call = False

    def resolve(value: str) -> str:
        match = _NAMED.match(value)
        if match is None:
            return value
        ident, name = match.groups()
        if name is not None:
            names[ident] = name
        return names.get(ident, value)

    with path.open(encoding="utf-8", errors="replace") as lines:
        for raw in lines:
            line = raw.rstrip("\n")
            if not line:
                continue
            head = line[0]
            if head.isdigit() or head in "+-*":
                cost = _cost(line)
                if pending_call:
                    dump.callee_cost[function] += cost
                    pending_call = False
                else:
                    dump.self_cost[function] += cost
            elif line.startswith("fn="):
                function = resolve(line[3:])
            elif line.startswith("cfn="):
                resolve(line[4:])
            elif line.startswith("calls="):
                pending_call = True
            elif line.startswith("desc: Trigger:"):
                dump.label = line.rsplit(":", 1)[-1].strip()
            elif line.startswith(("summary:", "totals:")):
                dump.total = int(line.split()[1])
    return dump


def label_and_total(path: Path) -> tuple[str, int]:
    """A dump's trigger label and total, without reading its function table."""
    label, total = "", 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.startswith("desc: Trigger:"):
                label = line.rsplit(":", 1)[-1].strip()
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    return label, total
