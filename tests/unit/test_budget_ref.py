"""A budget instance as a dictionary key: equal instances hash alike, here and after pickling."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from costrouter.config.budget_ref import BudgetRef
from costrouter.config.windows import parse_window

REF = BudgetRef("session-total", "session", "s-1", parse_window("total"), 1_000, (0.5, 0.9), "reject", None)


def test_equal_instances_are_one_key() -> None:
    twin = BudgetRef("session-total", "session", "s-1", parse_window("total"), 1_000, (0.5, 0.9), "reject", None)
    assert twin == REF
    assert hash(twin) == hash(REF)
    assert {REF: 1}[twin] == 1
    other = replace(REF, scope_id="s-2")
    assert other != REF
    assert hash(other) != hash(REF)
    assert replace(other, scope_id="s-1") == REF
    assert hash(replace(other, scope_id="s-1")) == hash(REF)


def test_an_instance_pickled_in_another_process_hashes_as_one_built_here() -> None:
    """String hashes change with the process's seed: the cached hash must not travel."""
    code = (
        "import pickle, sys\n"
        "from costrouter.config.budget_ref import BudgetRef\n"
        "from costrouter.config.windows import parse_window\n"
        "ref = BudgetRef('session-total', 'session', 's-1', parse_window('total'), 1_000, (0.5, 0.9), 'reject', None)\n"
        "sys.stdout.buffer.write(pickle.dumps(ref))\n"
    )
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, env=environment, check=True)
    travelled = pickle.loads(child.stdout)
    assert travelled == REF
    assert hash(travelled) == hash(REF)
    assert {REF: "here"}[travelled] == "here"
