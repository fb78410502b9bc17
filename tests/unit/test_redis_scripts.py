"""Each budget script carries the lib.lua functions it calls, directly or through another, and no other."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from costrouter.budget.redis import SCRIPT_NAMES, _lib_functions, script_source

DEFINED = re.compile(r"^local function (\w+)\(", re.MULTILINE)


def _defined(name: str) -> list[str]:
    return DEFINED.findall(script_source(name))


def test_a_script_carries_what_it_calls_and_what_those_call() -> None:
    # window.lua calls window_of, which formats a fixed window's start with int, which saturates (sat).
    assert _defined("window") == ["sat", "int", "window_of"]
    # renew.lua: the clock, the record split and join, a push on the hold queue's text and the
    # records' write; no window code, and none of the queue tools a sweep builds.
    assert _defined("renew") == ["server_now", "decode", "encode", "push_text", "due_at", "write_records"]


def test_a_script_that_calls_no_helper_carries_none() -> None:
    assert _defined("accept") == []
    assert _defined("epoch") == []


def test_the_settle_script_leaves_out_the_reserve_and_the_lease_counters() -> None:
    defined = _defined("settle")
    assert "reserve_one" not in defined
    assert "counters" not in defined
    assert {"sweep", "window_state", "read_window", "sweep_leases"} <= set(defined)


def test_every_helper_a_script_calls_is_defined_before_the_script_body() -> None:
    names = {name for name, _ in _lib_functions(_lib_text())}
    for script in SCRIPT_NAMES:
        source = script_source(script)
        defined = set(DEFINED.findall(source))
        called = {word for word in re.findall(r"\b(\w+)\(", _code(source)) if word in names}
        assert called <= defined, (script, called - defined)


def test_top_level_code_in_the_library_is_refused() -> None:
    with pytest.raises(ValueError, match="only local functions"):
        _lib_functions("local function a()\nend\nlocal x = 1\n")


def test_a_function_keeps_the_comment_right_above_it() -> None:
    lib = "-- about a\nlocal function a()\n  return 1\nend\n\n-- loose\n\nlocal function b()\nend\n"
    assert _lib_functions(lib) == [
        ("a", "-- about a\nlocal function a()\n  return 1\nend\n"),
        ("b", "local function b()\nend\n"),
    ]


def _lib_text() -> str:
    return files("costrouter.budget").joinpath("lua", "lib.lua").read_text(encoding="utf-8")


def _code(source: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in source.splitlines())
