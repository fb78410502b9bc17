"""The fast YAML reader (C parser events) gives what PyYAML's composer gives: data, lines, duplicates, errors."""

from __future__ import annotations

import datetime
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from costrouter.config import reader as _yaml
from costrouter.errors import ConfigError

SAME_AS_COMPOSER = [
    "",
    "# only a comment\n",
    "---\n",
    "plain\n",
    "a: 1\nb: [1, 2.5, x, 'q', null, true, 2026-01-02]\nc:\n  - {d: e}\n  - - 1\n    - 2\n",
    "a: 1\na: 2\nb:\n  c: 1\n  c: 3\n",
    "- a\n- b: 1\n  b: 2\n",
    "'<<': 1\n",
    "k: 0o17\nj: 0x1F\nm: 1_000\nn: .inf\no: ~\np: ''\nq: '1'\n",
    "{a: 1, b: {c: [d, {e: f}]}}\n",
    "1: a\ntrue: b\n1.0: c\n",
    "[" * 150 + "]" * 150,
]


def composed(text: str) -> tuple[Any, list[Any]]:
    """What the node builder (the reader of unusual files) makes of ``text``."""
    loader = _yaml._Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        builder = _yaml._Builder(loader)
        return builder.build(node), builder.duplicates
    finally:
        loader.dispose()


def shape(value: Any) -> Any:
    """The data with the line tables of every mapping and list, to compare two readings."""
    if isinstance(value, dict):
        return ("dict", getattr(value, "lines", None), [(key, shape(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", getattr(value, "lines", None), [shape(item) for item in value])
    return (type(value).__name__, value)


@pytest.mark.parametrize("text", SAME_AS_COMPOSER)
def test_the_event_reader_matches_the_composer(text: str) -> None:
    data, duplicates = _yaml._read_events(text)
    expected, expected_duplicates = composed(text)
    assert shape(data) == shape(expected)
    assert duplicates == expected_duplicates


def test_scalars_are_typed_once_per_distinct_value() -> None:
    data, _ = _yaml._read_events("a: [1, 1, '1', 2026-01-02, 0.5, 0.5]\n")
    assert data["a"] == [1, 1, "1", datetime.date(2026, 1, 2), 0.5, 0.5]
    assert data["a"].lines == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1}


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",
        "base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n",
        "a: !!str 12\n",
        "= : 1\n",
        "[" * 300 + "]" * 300,
        "a: 1\n---\nb: 2\n",
    ],
)
def test_unusual_files_are_left_to_the_composer(text: str) -> None:
    with pytest.raises(_yaml._UnusualError):
        _yaml._read_events(text)


def test_anchors_merge_keys_and_tags_still_load(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\ne: !!str 12\nf: *b\n")
    data, problems = _yaml.read_yaml_and_problems(path)
    assert data == {"base": {"x": 1}, "d": {"x": 1, "y": 2}, "e": "12", "f": {"x": 1}}
    assert data["d"].lines["y"] == 4
    assert problems == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: [1, 2\n", "malformed YAML"),
        ("a: 1\n---\nb: 2\n", "malformed YAML: but found another document"),
        ("? [a]\n: 1\n", "a mapping key must be a plain value"),
        ("a: *nowhere\n", "malformed YAML: found undefined alias"),
    ],
)
def test_bad_files_are_still_named(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=reason):
        _yaml.read_yaml(path)


def test_the_reader_uses_the_c_parser() -> None:
    assert issubclass(_yaml._Loader, yaml.CSafeLoader)


# ---- hostile files: an alias bomb is refused at once, with its line ------------------------------
ROOT = Path(__file__).resolve().parents[2]
BILLION_LAUGHS = "\n".join(
    [
        'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]" for level in range(1, 9)),
    ]
)
MERGE_BOMB = "\n".join(
    ["m0: &m0 {a: 1, b: 2}", *(f"m{level}: &m{level} {{<<: [*m{level - 1}, *m{level - 1}]}}" for level in range(1, 40))]
)


def validate_in_a_child(*files: Path) -> subprocess.CompletedProcess[str]:
    """``costrouter validate`` with its memory and CPU capped: a bomb that expands ends there, not in the host."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
        resource.setrlimit(resource.RLIMIT_CPU, (120, 120))

    environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [sys.executable, "-m", "costrouter", "validate", *map(str, files)]
    return subprocess.run(
        command, capture_output=True, text=True, env=environment, cwd=ROOT, preexec_fn=cap, check=False
    )


@pytest.mark.parametrize(("bomb", "line"), [(BILLION_LAUGHS, 6), (MERGE_BOMB, 15)], ids=["billion-laughs", "merges"])
@pytest.mark.parametrize("role", ["router", "budgets"])
def test_an_alias_bomb_is_refused_with_its_file_and_line(tmp_path: Path, bomb: str, line: int, role: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb + "\n")
    files = [path] if role == "router" else [ROOT / "configs" / "router.yaml", path]
    result = validate_in_a_child(*files)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{path}:{line}: its aliases expand this value past" in result.stderr
    assert "alias bomb" in result.stderr


def test_templates_reused_through_aliases_still_load(tmp_path: Path) -> None:
    template = "defaults: &d {api_base: 'http://x', rpm: 10, tpm: 1000, timeout: 30}\n"
    groups = "".join(f"g{index}: {{<<: *d, model: m{index}}}\n" for index in range(2_000))
    path = tmp_path / "reused.yaml"
    path.write_text(template + groups)
    data, problems = _yaml.read_yaml_and_problems(path)
    assert problems == []
    assert data["g1999"] == {"api_base": "http://x", "rpm": 10, "tpm": 1000, "timeout": 30, "model": "m1999"}


def test_a_file_past_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(_yaml.MAX_YAML_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ConfigError, match="larger than 32 MiB"):
        _yaml.read_yaml(path)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: \xe9t\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        _yaml.read_yaml(path)
