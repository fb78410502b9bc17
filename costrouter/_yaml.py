"""Read a YAML file into a pydantic model, turning every failure into a ConfigError."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from costrouter.errors import ConfigError, ConfigProblem

ModelT = TypeVar("ModelT", bound=BaseModel)


_Loader: Final[type[yaml.SafeLoader]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG: Final = "tag:yaml.org,2002:str"


class _LinedDict(dict[Any, Any]):
    """A dict that knows the source line of each of its keys."""

    def __init__(self, data: Mapping[Any, Any], lines: dict[Any, int]) -> None:
        super().__init__(data)
        self.lines = lines


class _LinedList(list[Any]):
    """A list that knows the source line of each of its items."""

    def __init__(self, items: Iterable[Any], lines: dict[Any, int]) -> None:
        super().__init__(items)
        self.lines = lines


def lined(data: Mapping[Any, Any], lines: Mapping[Any, int | None]) -> dict[Any, Any]:
    """A mapping built from another file layout that still knows where each key came from."""
    return _LinedDict(data, {key: line for key, line in lines.items() if line is not None})


class _Builder:
    """Python objects from a composed YAML node tree, remembering lines and duplicate keys.

    PyYAML's generic constructor costs about 20 µs a node; strings (most of a config) are
    taken straight from the node here, other scalars go through the safe constructor.
    """

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.duplicates: list[ConfigProblem] = []

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return node.value if node.tag == _STR_TAG else self.loader.construct_object(node)
        if isinstance(node, yaml.SequenceNode):
            return _LinedList(
                [self.build(item) for item in node.value],
                {index: item.start_mark.line + 1 for index, item in enumerate(node.value)},
            )
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            mapping: dict[Any, Any] = {}
            lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = self.build(key_node)
                line = key_node.start_mark.line + 1
                if key in lines:
                    reason = f"duplicate key {key!r} (first given on line {lines[key]}); YAML would keep only the last"
                    self.duplicates.append(ConfigProblem(str(key), reason, line))
                lines.setdefault(key, line)
                mapping[key] = self.build(value_node)
            return _LinedDict(mapping, lines)
        return self.loader.construct_object(node)


def read_yaml_and_problems(path: str | Path) -> tuple[Any, list[ConfigProblem]]:
    """Parse a YAML file; keys given twice come back as problems, the file is still read.

    A missing file or a syntax error is a ConfigError.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError.single(source, "", f"cannot read file: {exc.strerror or exc}") from exc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        builder = _Builder(loader)
        return builder.build(node), builder.duplicates
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError.single(source, "", f"malformed YAML: {problem}", line) from exc
    except RecursionError as exc:
        raise ConfigError.single(
            source, "", "malformed YAML: nested too deep, or an alias that contains itself"
        ) from exc
    except TypeError as exc:
        raise ConfigError.single(source, "", f"malformed YAML: a mapping key must be a plain value ({exc})") from exc
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file, a syntax error or a duplicate key becomes a ConfigError."""
    data, problems = read_yaml_and_problems(path)
    if problems:
        raise ConfigError(str(path), problems)
    return data


def line_of(data: Any, location: tuple[int | str, ...]) -> int | None:
    """The source line of the deepest key of ``location`` that carries one."""
    line = None
    node = data
    for part in location:
        if isinstance(node, (_LinedDict, _LinedList)) and part in node.lines:
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


def validate(
    model: type[ModelT], data: Any, source: str, problems: Sequence[ConfigProblem] = (), context: Any = None
) -> ModelT:
    """Validate ``data`` against ``model``; every problem (and ``problems``) is reported in one ConfigError."""
    if data is None:
        raise ConfigError.single(source, "", "the file is empty")
    if isinstance(data, BaseModel) and isinstance(data, model):
        return data
    try:
        result = model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(source, by_line([*problems, *problems_from_validation(exc, data)])) from exc
    if problems:
        raise ConfigError(source, by_line(problems))
    return result


def by_line(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    """Problems in file order (those without a line last, in their given order)."""
    return sorted(problems, key=lambda problem: (problem.line is None, problem.line or 0))


def load_model(model: type[ModelT], path: str | Path) -> ModelT:
    """Read ``path`` and validate it as ``model``; duplicate keys and field problems together."""
    data, problems = read_yaml_and_problems(path)
    return validate(model, data, str(path), problems)
