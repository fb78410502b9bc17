"""Read a YAML file into a pydantic model, turning every failure into a ConfigError."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from costrouter.errors import ConfigError, ConfigProblem

ModelT = TypeVar("ModelT", bound=BaseModel)


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines = {key_node.value: key_node.start_mark.line + 1 for key_node, _ in node.value if hasattr(key_node, "value")}
    return _LinedDict(mapping, lines)


class _LinedDict(dict[Any, Any]):
    """A dict that knows the source line of each of its keys."""

    def __init__(self, data: Mapping[Any, Any], lines: dict[Any, int]) -> None:
        super().__init__(data)
        self.lines = lines


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error becomes a ConfigError."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError.single(source, "", f"cannot read file: {exc.strerror or exc}") from exc
    try:
        loader = _LineLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError.single(source, "", f"malformed YAML: {problem}", line) from exc


def line_of(data: Any, location: tuple[int | str, ...]) -> int | None:
    """The source line of the deepest key of ``location`` that carries one."""
    line = None
    node = data
    for part in location:
        if isinstance(node, _LinedDict) and part in node.lines:
            line = node.lines[part]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return line


def format_location(location: tuple[int | str, ...]) -> str:
    """``("groups", "fast", "deployments", 0, "price")`` → ``groups.fast.deployments[0].price``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def problems_from_validation(error: ValidationError, data: Any) -> list[ConfigProblem]:
    """One ConfigProblem per pydantic error, with a readable reason and the source line."""
    problems = []
    for item in error.errors():
        location = tuple(part for part in item["loc"] if not str(part).startswith("function-"))
        reason = item["msg"]
        if item["type"] == "extra_forbidden":
            reason = "unknown key"
        elif item["type"] == "missing":
            reason = "required field is missing"
        problems.append(ConfigProblem(format_location(location), reason, line_of(data, location)))
    return problems


def validate(model: type[ModelT], data: Any, source: str) -> ModelT:
    """Validate ``data`` against ``model``; every problem is reported in one ConfigError."""
    if data is None:
        raise ConfigError.single(source, "", "the file is empty")
    if isinstance(data, BaseModel) and isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from_validation(exc, data)) from exc


def load_model(model: type[ModelT], path: str | Path) -> ModelT:
    """Read ``path`` and validate it as ``model``."""
    return validate(model, read_yaml(path), str(path))
