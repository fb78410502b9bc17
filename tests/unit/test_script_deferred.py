"""A script's part after ``--@deferred`` builds the lib functions only it uses when it runs, not before."""

from __future__ import annotations

import re

from costrouter.budget.redis import script_source

DEFINED = re.compile(r"^local function (\w+)\(", re.MULTILINE)


def test_the_lease_fast_path_builds_none_of_the_sweep() -> None:
    source = script_source("lease")
    head, marker, deferred = source.partition("local function deferred()\n")
    assert marker
    head_functions = ["server_now", "sat", "int", "window_of", "expire_window", "size", "replay", "charged"]
    assert DEFINED.findall(head) == head_functions
    later = DEFINED.findall(deferred)
    assert {"records", "sweep", "sweep_leases", "window_state", "lease_decode"} <= set(later)
    assert not set(later) & set(DEFINED.findall(head))  # each built once: the deferred part reuses the head's
    assert source.rstrip().endswith("end\nreturn deferred()")


def test_a_script_without_the_marker_is_as_before() -> None:
    assert "deferred" not in script_source("settle")
