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

MAX_YAML_BYTES: Final = 32 * 1024 * 1024
"""The largest YAML file read: a router file of 10,000 groups is about 1 MB."""
ALIAS_NODES: Final = 100_000
"""The nodes that anchors and aliases (and merge keys) may add to a file, beyond :data:`ALIAS_FACTOR`."""
ALIAS_FACTOR: Final = 10
"""A file's aliases may also expand it to this many times its own nodes (templates reused in a large file)."""


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


class SourceLine(int):
    """A line of another file than the one a problem is reported against (an ``include``d file)."""

    file: str

    def __new__(cls, line: int, file: str) -> SourceLine:
        """Line ``line`` of ``file``."""
        value = super().__new__(cls, line)
        value.file = file
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        return (SourceLine, (int(self), self.file))


def in_file(data: Any, file: str) -> Any:
    """``data`` as read, with every line it knows marked as a line of ``file`` (:class:`SourceLine`)."""
    if isinstance(data, (_LinedDict, _LinedList)):
        data.lines = {key: SourceLine(line, file) for key, line in data.lines.items()}
    if isinstance(data, Mapping):
        for value in data.values():
            in_file(value, file)
    elif isinstance(data, list):
        for item in data:
            in_file(item, file)
    return data


def merged_documents(base: Mapping[Any, Any], included: Mapping[Any, Any]) -> dict[Any, Any]:
    """``included`` merged into ``base`` as LiteLLM's proxy merges an include: lists extended, other values replaced.

    Every key and list item keeps the line (and file) it was read from.
    """
    out = dict(base)
    lines = dict(getattr(base, "lines", {}))
    included_lines = getattr(included, "lines", {})
    for key, value in included.items():
        old = out.get(key)
        if isinstance(value, list) and isinstance(old, list):
            item_lines = dict(getattr(old, "lines", {}))
            item_lines.update({len(old) + index: line for index, line in getattr(value, "lines", {}).items()})
            out[key] = _LinedList([*old, *value], item_lines)
            continue
        out[key] = value
        if key in included_lines:
            lines[key] = included_lines[key]
    return _LinedDict(out, lines)


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


class _UnusualError(Exception):
    """The document uses a YAML feature the event reader leaves to PyYAML's composer."""


_PLAIN_TAGS: Final = frozenset(f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "timestamp"))
_MAX_FAST_DEPTH: Final = 200
_NO_KEY: Final = object()


class _EventReader:
    """Python objects straight from the C parser's events, with the lines and duplicates of :class:`_Builder`.

    Composing nodes costs PyYAML a Python node, two marks and a resolver call per scalar;
    reading the events skips the nodes, and resolves and constructs each distinct plain
    scalar once. Anchors, aliases, explicit tags, merge keys, several documents and deep
    nesting raise :class:`_UnusualError`: :class:`_Builder` reads those files, as before.
    """

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader: Any = loader  # PyYAML's event methods carry no type hints
        self.duplicates: list[ConfigProblem] = []
        self.scalars: dict[tuple[str, tuple[bool, bool]], Any] = {}

    def scalar(self, event: Any) -> Any:
        if event.anchor is not None or (event.tag is not None and event.tag != "!"):
            raise _UnusualError
        implicit = event.implicit
        if not implicit[0]:
            return event.value
        cache_key = (event.value, implicit)
        try:
            return self.scalars[cache_key]
        except KeyError:
            pass
        tag = self.loader.resolve(yaml.ScalarNode, event.value, implicit)
        if tag == _STR_TAG:
            value: Any = event.value
        elif tag in _PLAIN_TAGS:
            value = self.loader.construct_object(yaml.ScalarNode(tag, event.value))
        else:
            raise _UnusualError
        self.scalars[cache_key] = value
        return value

    def read(self) -> Any:
        """The document's data; ``None`` for a stream without a document."""
        loader = self.loader
        loader.get_event()  # the stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # the document start
        # One entry per open collection: [items, lines, its own line, pending key, that key's line].
        stack: list[list[Any]] = []
        while True:
            event: Any = loader.get_event()
            if isinstance(event, yaml.ScalarEvent):
                value: Any = self.scalar(event)
                line = _line(event)
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if event.anchor is not None or (event.tag is not None and event.tag != "!"):
                    raise _UnusualError
                if len(stack) >= _MAX_FAST_DEPTH:
                    raise _UnusualError  # the composer reports what nesting this deep does
                items: dict[Any, Any] | list[Any] = {} if isinstance(event, yaml.MappingStartEvent) else []
                stack.append([items, {}, _line(event), _NO_KEY, 0])
                continue
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                items, lines, line, _, _ = stack.pop()
                value = _LinedDict(items, lines) if isinstance(items, dict) else _LinedList(items, lines)
            else:
                raise _UnusualError  # an alias
            if not stack:
                return self.end(value)
            top = stack[-1]
            items = top[0]
            if isinstance(items, list):
                top[1][len(items)] = line
                items.append(value)
            elif top[3] is _NO_KEY:
                top[3], top[4] = value, line
            else:
                self.put(top, value)

    def end(self, value: Any) -> Any:
        loader = self.loader
        loader.get_event()  # the document end
        if not loader.check_event(yaml.StreamEndEvent):
            raise _UnusualError  # several documents: the composer says so
        return value

    def put(self, top: list[Any], value: Any) -> None:
        mapping, lines, _, key, line = top
        if key in lines:
            reason = f"duplicate key {key!r} (first given on line {lines[key]}); YAML would keep only the last"
            self.duplicates.append(ConfigProblem(str(key), reason, line))
        lines.setdefault(key, line)
        mapping[key] = value
        top[3] = _NO_KEY


def _line(event: Any) -> int:
    return int(event.start_mark.line) + 1


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Refuse a document whose aliases expand it past the budget (a "billion laughs"), before building it.

    Each node's expanded size is computed once (aliases share their anchor's node), so the
    check costs one pass over the file's own nodes, however far its aliases would expand.
    """
    distinct: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in distinct:
            continue
        distinct.add(id(node))
        stack.extend(_children(node))
    limit = ALIAS_NODES + ALIAS_FACTOR * len(distinct)
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:  # an alias inside its own anchor: it expands without end
            total = limit + 1
        else:
            open_nodes.add(id(node))
            total = 1 + sum(size(child) for child in _children(node))
            open_nodes.discard(id(node))
        if total > limit:
            reason = (
                f"its aliases expand this value past {limit:,} nodes (the file itself has {len(distinct):,}): "
                "refused as an alias bomb"
            )
            raise ConfigError.single(source, "", reason, node.start_mark.line + 1)
        sizes[id(node)] = total
        return total

    size(root)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _read_events(text: str) -> tuple[Any, list[ConfigProblem]]:
    loader = _Loader(text)
    try:
        reader = _EventReader(loader)
        return reader.read(), reader.duplicates
    finally:
        loader.dispose()


def read_yaml_and_problems(path: str | Path) -> tuple[Any, list[ConfigProblem]]:
    """Parse a YAML file; keys given twice come back as problems, the file is still read.

    A missing file or a syntax error is a ConfigError.
    """
    source = str(path)
    try:
        with Path(path).open("rb") as file:
            raw = file.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError.single(source, "", f"cannot read file: {exc.strerror or exc}") from exc
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError.single(
            source, "", f"the file is larger than {MAX_YAML_BYTES // 2**20} MiB: not a configuration"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError.single(source, "", f"cannot read file: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        return _read_events(text)
    except (_UnusualError, yaml.YAMLError, TypeError, RecursionError):
        pass  # the composer reads the file again: it handles the feature, or names the problem
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        _check_expansion(node, source)
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
