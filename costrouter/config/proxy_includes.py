"""A LiteLLM proxy file's ``include:`` list, read as the proxy reads it.

``include`` names other YAML files; each is read (its own ``include`` too, each file once) and
merged into the file that names it, top-level key by key: a list (``model_list``) is extended, any
other value replaced (LiteLLM's ``proxy/common_utils/config_includes.py``, ``_merged_value``). An
entry is found next to the file that declares it, else next to the root file (LiteLLM's
``resolve_include_file_path``, which warns then; so does costrouter). Every value keeps the file and
line it was read from, so a problem in an included file is reported there; every included file is
read with the reader's size and alias limits.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from costrouter.config.reader import SourceLine, in_file, line_of, lined, merged_documents, read_yaml_and_problems
from costrouter.errors import ConfigProblem

__all__ = ["INCLUDE", "with_includes"]

INCLUDE: Final = "include"
logger = logging.getLogger("costrouter")


def with_includes(data: Any, path: str | Path, problems: Sequence[ConfigProblem]) -> tuple[Any, list[ConfigProblem]]:
    """``data`` (the file at ``path``, as read) with its includes merged in, and every problem found."""
    found = list(problems)
    if not isinstance(data, Mapping) or INCLUDE not in data or "groups" in data:
        return data, found
    root = Path(path).resolve()
    loaded = {root}
    merged = _without_include(data)
    pending = deque(_entries(data, root, found))
    while pending:
        entry, declared_in, line = pending.popleft()
        location = _resolved(entry, declared_in, root)
        if location in loaded:
            continue
        if not location.is_file():
            found.append(ConfigProblem(INCLUDE, f"{entry!r}: no such file next to {declared_in.name}", line))
            continue
        loaded.add(location)
        included, more = read_yaml_and_problems(location)
        found += [_in(problem, str(location)) for problem in more]
        if not isinstance(included, Mapping):
            found.append(ConfigProblem(INCLUDE, f"{entry!r}: {location.name} is not a YAML mapping", line))
            continue
        included = in_file(included, str(location))
        pending.extend(_entries(included, location, found))
        merged = merged_documents(merged, _without_include(included))
    return merged, found


def _entries(data: Mapping[str, Any], declared_in: Path, found: list[ConfigProblem]) -> Iterator[tuple[str, Path, Any]]:
    """``(entry, the file declaring it, its line)`` of each path of ``data``'s ``include`` list."""
    entries = data.get(INCLUDE)
    if entries is None:
        return
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        found.append(ConfigProblem(INCLUDE, "must be a list of file paths", line_of(data, (INCLUDE,))))
        return
    for index, entry in enumerate(entries):
        yield entry, declared_in, line_of(data, (INCLUDE, index))


def _resolved(entry: str, declared_in: Path, root: Path) -> Path:
    """The file ``entry`` names: next to the file declaring it, else (with a warning) next to the root file."""
    beside_declaring = (declared_in.parent / entry).resolve()
    beside_root = (root.parent / entry).resolve()
    if beside_root == beside_declaring or not beside_root.exists():
        return beside_declaring
    if not beside_declaring.exists():
        logger.warning(
            "costrouter: include %r of %s is not next to it; %s is read instead, as LiteLLM's proxy does",
            entry,
            declared_in,
            beside_root,
        )
        return beside_root
    logger.warning(
        "costrouter: include %r of %s names two files; %s (next to it) is read, %s is not",
        entry,
        declared_in,
        beside_declaring,
        beside_root,
    )
    return beside_declaring


def _without_include(data: Mapping[str, Any]) -> dict[str, Any]:
    return lined(
        {key: value for key, value in data.items() if key != INCLUDE},
        {key: line_of(data, (key,)) for key in data if key != INCLUDE},
    )


def _in(problem: ConfigProblem, file: str) -> ConfigProblem:
    return problem if problem.line is None else replace(problem, line=SourceLine(problem.line, file))
