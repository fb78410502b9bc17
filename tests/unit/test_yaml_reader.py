"""The fast YAML reader (C parser events) gives what PyYAML's composer gives: data, lines, duplicates, errors."""

from __future__ import annotations

import datetime
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
