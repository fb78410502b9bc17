"""One span record → what a report needs of it, checked: a bad record is a :class:`BadRecordError`, never a crash.

A routed call is its span ``router.completion/{group}``; its provider requests are the
attempt spans ``router.attempt/{deployment}`` under it. Every field a report adds up is
checked here: times are integers, costs finite and within :data:`MAX_CALL_COST_USD`,
tokens whole and not negative, so one bad line can never poison a total.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Final, Literal, NamedTuple

from costrouter.otel import semconv as sc

__all__ = [
    "DIMENSIONS",
    "MAX_CALL_COST_USD",
    "PICO",
    "RECENT_CALLS",
    "REPORT_ATTRIBUTES",
    "AttemptSummary",
    "BadRecordError",
    "CallJoiner",
    "CallSummary",
    "Dimension",
    "attempt_from_record",
    "call_from_record",
    "calls_from_records",
    "span_kind",
]

Dimension = Literal["group", "requested", "deployment", "session", "user", "team", "tag", "model", "operation"]
DIMENSIONS: Final[tuple[Dimension, ...]] = (
    "group",
    "requested",
    "deployment",
    "session",
    "user",
    "team",
    "tag",
    "model",
    "operation",
)
"""Every dimension a report can group by."""
PICO: Final = 1_000_000_000_000
"""Costs are summed as integers of 1e-12 USD."""
MAX_CALL_COST_USD: Final = 1_000_000.0
"""A call span claiming more than this is a bad record, not a cost."""
_CALL_PREFIX: Final = sc.CALL_SPAN_NAME_PREFIXES
_ATTEMPT_PREFIX: Final = f"{sc.ATTEMPT_SPAN_NAME_PREFIX}/"
_MISSING: Final = object()
_SERVED: Final = sc.ROUTER_SERVED_GROUP
_REQUESTED: Final = sc.ROUTER_MODEL_GROUP
_DEPLOYMENT: Final = sc.ROUTER_DEPLOYMENT_ID
_SESSION: Final = sc.SESSION_ID
_USER: Final = sc.USER_ID
_TEAM: Final = sc.TEAM_ID
_RESPONSE_MODEL: Final = sc.GEN_AI_RESPONSE_MODEL
_OPERATION: Final = sc.GEN_AI_OPERATION_NAME
_LATENCY: Final = sc.LLM_LATENCY_MS
_COST: Final = sc.LLM_USAGE_COST_USD
_INPUT: Final = sc.GEN_AI_USAGE_INPUT_TOKENS
_OUTPUT: Final = sc.GEN_AI_USAGE_OUTPUT_TOKENS
_BUDGET_OUTCOME: Final = sc.BUDGET_OUTCOME
_ERROR_TYPE: Final = sc.ERROR_TYPE
_ROUTER_TAGS: Final = sc.ROUTER_TAGS
_TAG_TAGS: Final = sc.TAG_TAGS
_ATTEMPT_KIND: Final = sc.ATTEMPT_KIND
_ATTEMPT_INDEX: Final = sc.ATTEMPT_INDEX
_ATTEMPT_OUTCOME: Final = sc.ATTEMPT_OUTCOME
# (module-level names: a million records read each of them, and a global is cheaper than ``sc.X``)
REPORT_ATTRIBUTES: Final = frozenset(
    {
        _SERVED,
        _REQUESTED,
        _DEPLOYMENT,
        _SESSION,
        _USER,
        _TEAM,
        _RESPONSE_MODEL,
        sc.GEN_AI_REQUEST_MODEL,
        _OPERATION,
        _LATENCY,
        _COST,
        _INPUT,
        _OUTPUT,
        _BUDGET_OUTCOME,
        _ERROR_TYPE,
        _ROUTER_TAGS,
        _TAG_TAGS,
        _ATTEMPT_KIND,
        _ATTEMPT_INDEX,
        _ATTEMPT_OUTCOME,
    }
)
"""Every span attribute a report reads (of 80-odd on a call span): a span file reader may keep only these."""


class BadRecordError(ValueError):
    """A span record a report cannot count; the message says which field and why."""


class AttemptSummary(NamedTuple):
    """One provider request of a routed call."""

    group: str | None
    deployment: str | None
    kind: str
    succeeded: bool


class CallSummary(NamedTuple):
    """What a report needs from one routed call's span (a named tuple: a million are made per report)."""

    trace_id: str
    span_id: str
    group: str | None
    requested: str | None
    deployment: str | None
    session: str | None
    user: str | None
    team: str | None
    outcome: Literal["ok", "failed", "rejected"]
    cost_usd: float
    input_tokens: int
    output_tokens: int
    latency_ms: float
    attempts: tuple[AttemptSummary, ...]
    tags: tuple[str, ...] = ()
    model: str | None = None
    start_time_ns: int = 0
    operation: str | None = None
    """The call's ``gen_ai.operation.name`` (``chat``, ``embeddings``, ``generate_content`` …)."""

    @property
    def cost_pico(self) -> int:
        """The cost in integer 1e-12 USD."""
        return round(self.cost_usd * PICO)

    def value(self, dimension: Dimension) -> str | None:
        """The value of ``dimension`` for this call (the first tag for ``tag``)."""
        if dimension == "tag":
            return self.tags[0] if self.tags else None
        return getattr(self, dimension)  # type: ignore[no-any-return]

    def keys(self, dimensions: Sequence[Dimension]) -> list[tuple[str | None, ...]]:
        """Every row key of this call: one, or one per tag when ``tag`` is a dimension."""
        if "tag" not in dimensions or len(self.tags) <= 1:
            return [tuple(self.value(dimension) for dimension in dimensions)]
        values = [self.tags if dimension == "tag" else (self.value(dimension),) for dimension in dimensions]
        return list(itertools.product(*values))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if value.__class__ is str:
        return value or None
    return None if value is None or value == "" else str(value)


def _number(source: Mapping[str, Any], name: str, *, upper: float = math.inf) -> float:
    value = source.get(name)
    if value.__class__ is float and 0.0 <= value <= upper and value != math.inf:
        return value
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRecordError(f"{name} is not a number: {_shown(value)}")
    if not math.isfinite(value) or value < 0 or value > upper:
        bound = f" (at most {upper:g})" if math.isfinite(upper) else ""
        raise BadRecordError(f"{name} must be a finite number not below 0{bound}, not {_shown(value)}")
    return float(value)


def _whole(source: Mapping[str, Any], name: str) -> int:
    value = source.get(name)
    if value.__class__ is int and value >= 0:
        return value
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRecordError(f"{name} must be a whole number not below 0, not {_shown(value)}")
    return value


def _attributes(record: Mapping[str, Any]) -> Mapping[str, Any]:
    attributes = record.get("attributes")
    if attributes.__class__ is dict:
        return attributes
    if attributes is None:
        return {}
    if not isinstance(attributes, Mapping):
        raise BadRecordError(f"attributes is not an object: {_shown(attributes)}")
    return attributes


def span_kind(record: Mapping[str, Any]) -> Literal["call", "attempt"] | None:
    """``call`` for a routed-call span, ``attempt`` for an attempt span, else ``None``."""
    name = record.get("name")
    if not isinstance(name, str):
        raise BadRecordError(f"name is not a string: {_shown(name)}")
    if name.startswith(_CALL_PREFIX):
        return "call"
    if name.startswith(_ATTEMPT_PREFIX):
        return "attempt"
    return None


def _outcome(record: Mapping[str, Any], attributes: Mapping[str, Any]) -> Literal["ok", "failed", "rejected"]:
    error = attributes.get(_ERROR_TYPE, _MISSING)
    if attributes.get(_BUDGET_OUTCOME) == "rejected" or error == "BudgetExceededError":
        return "rejected"
    if error is not _MISSING:
        return "failed"
    status = record.get("status")
    if status.__class__ is dict or isinstance(status, Mapping):
        return "failed" if status.get("code") == "ERROR" else "ok"
    return "ok"


def _tags(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    value = attributes.get(sc.ROUTER_TAGS, attributes.get(sc.TAG_TAGS))
    if value.__class__ is list and len(value) == 1 and value[0].__class__ is str and value[0]:
        return (value[0],)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)):
        raise BadRecordError(f"{sc.ROUTER_TAGS} is not a list of strings: {_shown(value)}")
    return tuple(dict.fromkeys(str(tag) for tag in value if tag not in (None, "")))


def call_key(record: Mapping[str, Any]) -> tuple[str, str]:
    """``(trace_id, span_id)`` of a call span."""
    trace_id, span_id = record.get("trace_id", ""), record.get("span_id", "")
    if trace_id.__class__ is str and span_id.__class__ is str:
        return trace_id, span_id
    return str(trace_id), str(span_id)


def _texts(attributes: Mapping[str, Any]) -> tuple[str | None, ...]:
    """Served group, requested group, deployment, session, user, team, model, operation (``None`` when missing)."""
    get = attributes.get
    requested = get(_REQUESTED)
    if requested.__class__ is not str or not requested:
        requested = None if requested is None else _text(attributes, _REQUESTED)
    served = get(_SERVED)
    if served.__class__ is not str or not served:
        served = _text(attributes, _SERVED) or requested
    deployment = get(_DEPLOYMENT)
    if deployment.__class__ is not str or not deployment:
        deployment = None if deployment is None else _text(attributes, _DEPLOYMENT)
    session = get(_SESSION)
    if session.__class__ is not str or not session:
        session = None if session is None else _text(attributes, _SESSION)
    user = get(_USER)
    if user.__class__ is not str or not user:
        user = None if user is None else _text(attributes, _USER)
    team = get(_TEAM)
    if team.__class__ is not str or not team:
        team = None if team is None else _text(attributes, _TEAM)
    model = get(_RESPONSE_MODEL)
    if model.__class__ is not str or not model:
        model = _text(attributes, _RESPONSE_MODEL) or _text(attributes, sc.GEN_AI_REQUEST_MODEL)
    operation = get(_OPERATION)
    if operation.__class__ is not str or not operation:
        operation = None if operation is None else _text(attributes, _OPERATION)
    return served, requested, deployment, session, user, team, model, operation


def call_from_record(record: Mapping[str, Any], attempts: Sequence[AttemptSummary] = ()) -> CallSummary:
    """The :class:`CallSummary` of a routed-call span; :class:`BadRecordError` names what is wrong."""
    # Each field is taken as is when it has its usual type and range, else through the
    # checking helper (which converts it or raises); checks run in the order of the messages.
    attributes = record.get("attributes")
    if attributes.__class__ is not dict:
        attributes = _attributes(record)
    get = attributes.get
    start = record.get("start_time_ns")
    if start.__class__ is not int or start < 0:
        start = _whole(record, "start_time_ns")
    end = record.get("end_time_ns")
    if end.__class__ is not int or end < 0:
        end = _whole(record, "end_time_ns")
    latency = get(_LATENCY, _MISSING)
    if latency.__class__ is not float or not 0.0 <= latency < math.inf:
        latency = max(0, end - start) / 1000000.0 if latency is _MISSING else _number(attributes, _LATENCY)
    cost = get(_COST)
    if cost.__class__ is not float or not 0.0 <= cost <= MAX_CALL_COST_USD:
        cost = _number(attributes, _COST, upper=MAX_CALL_COST_USD)
    input_tokens = get(_INPUT)
    if input_tokens.__class__ is not int or input_tokens < 0:
        input_tokens = _whole(attributes, _INPUT)
    output_tokens = get(_OUTPUT)
    if output_tokens.__class__ is not int or output_tokens < 0:
        output_tokens = _whole(attributes, _OUTPUT)
    served, requested, deployment, session, user, team, model, operation = _texts(attributes)
    trace_id, span_id = record.get("trace_id", ""), record.get("span_id", "")
    if trace_id.__class__ is not str or span_id.__class__ is not str:
        trace_id, span_id = str(trace_id), str(span_id)
    outcome = _outcome(record, attributes)
    if not attempts:  # a call whose one attempt succeeded carries it on its own span
        kind = get(_ATTEMPT_KIND)
        if kind is not None:
            attempts = (_new_attempt((served, deployment, str(kind), get(_ATTEMPT_OUTCOME) == "success")),)
    tags = get(_ROUTER_TAGS, _MISSING)
    if tags.__class__ is list and len(tags) == 1 and tags[0].__class__ is str and tags[0]:
        tags = (tags[0],)
    else:
        tags = _tags(attributes)
    return _new_call(
        (
            trace_id,
            span_id,
            served,
            requested,
            deployment,
            session,
            user,
            team,
            outcome,
            cost,
            input_tokens,
            output_tokens,
            latency,
            attempts if attempts.__class__ is tuple else tuple(attempts),
            tags,
            model,
            start,
            operation,
        )
    )


_new_call: Callable[[tuple[Any, ...]], CallSummary] = partial(tuple.__new__, CallSummary)
_new_attempt: Callable[[tuple[Any, ...]], AttemptSummary] = partial(tuple.__new__, AttemptSummary)


def attempt_from_record(record: Mapping[str, Any]) -> tuple[tuple[str, str], int, AttemptSummary]:
    """``(parent call key, attempt index, attempt)`` of an attempt span."""
    attributes = record.get("attributes")
    if attributes.__class__ is not dict:
        attributes = _attributes(record)
    get = attributes.get
    trace_id, parent_id = record.get("trace_id", ""), record.get("parent_span_id") or ""
    if trace_id.__class__ is not str or parent_id.__class__ is not str:
        trace_id, parent_id = str(trace_id), str(parent_id)
    group = get(sc.ROUTER_MODEL_GROUP)
    if group.__class__ is not str or not group:
        group = _text(attributes, sc.ROUTER_MODEL_GROUP)
    deployment = get(sc.ROUTER_DEPLOYMENT_ID)
    if deployment.__class__ is not str or not deployment:
        deployment = _text(attributes, sc.ROUTER_DEPLOYMENT_ID)
    kind = get(sc.ATTEMPT_KIND, "first")
    if kind.__class__ is not str:
        kind = str(kind)
    index = get(sc.ATTEMPT_INDEX)
    if index.__class__ is not int or index < 0:
        index = _whole(attributes, sc.ATTEMPT_INDEX)
    attempt = _new_attempt((group, deployment, kind, get(sc.ATTEMPT_OUTCOME) == "success"))
    return (trace_id, parent_id), index, attempt


def calls_from_records(records: Iterable[Mapping[str, Any]]) -> list[CallSummary]:
    """One :class:`CallSummary` per routed-call span, with its attempts, in file order (in memory)."""
    records = list(records)
    attempts: dict[tuple[str, str], list[tuple[int, AttemptSummary]]] = {}
    for record in records:
        if span_kind(record) == "attempt":
            parent, index, attempt = attempt_from_record(record)
            attempts.setdefault(parent, []).append((index, attempt))
    calls = []
    for record in records:
        if span_kind(record) == "call":
            found = sorted(attempts.get(call_key(record), []), key=lambda item: item[0])
            calls.append(call_from_record(record, [attempt for _, attempt in found]))
    return calls


def _first(item: tuple[int, AttemptSummary]) -> int:
    return item[0]


RECENT_CALLS: Final = 10_000
"""How many of the latest calls an attempt written after its call is looked for among."""


class CallJoiner:
    """Joins attempt spans to their call while reading a file once, in bounded memory.

    Attempts end (and are written) before their call, so they wait for it; an attempt that
    arrives after its call finds it among the last ``recent`` calls (by their latest span,
    when a call id repeats). ``on_call`` gets each call with the attempts that came before it,
    ``on_late_attempt`` each one that came after. ``window`` seeds those last calls (oldest
    first; ``None`` for a call outside the time range) when reading starts mid-file.
    """

    def __init__(
        self,
        on_call: Callable[[CallSummary], None],
        on_late_attempt: Callable[[CallSummary, AttemptSummary], None],
        accept: Callable[[CallSummary], bool] = lambda _call: True,
        recent: int = RECENT_CALLS,
        window: Iterable[tuple[tuple[str, str], CallSummary | None]] = (),
    ) -> None:
        self.on_call = on_call
        self.on_late_attempt = on_late_attempt
        self.accept = accept
        self.recent_size = recent
        self.pending: dict[tuple[str, str], list[tuple[int, AttemptSummary]]] = {}
        self.recent: OrderedDict[tuple[str, str], CallSummary | None] = OrderedDict(window)

    def add(self, record: Mapping[str, Any]) -> None:
        """Take one span record; :class:`BadRecordError` when it is a call or attempt span that is broken."""
        name: Any = record.get("name")
        if name.__class__ is not str:
            span_kind(record)  # raises: the name is not a string
        if name.startswith(_ATTEMPT_PREFIX):
            parent, index, attempt = attempt_from_record(record)
            recent = self.recent
            if parent in recent:
                call = recent[parent]
                if call is not None:
                    self.on_late_attempt(call, attempt)
                return
            waiting = self.pending.get(parent)
            if waiting is None:
                self.pending[parent] = [(index, attempt)]
            else:
                waiting.append((index, attempt))
        elif name.startswith(_CALL_PREFIX):
            self._add_call(record)

    def _add_call(self, record: Mapping[str, Any]) -> None:
        trace_id, span_id = record.get("trace_id", ""), record.get("span_id", "")
        if trace_id.__class__ is not str or span_id.__class__ is not str:
            trace_id, span_id = str(trace_id), str(span_id)
        key = (trace_id, span_id)
        waiting = self.pending.get(key)
        if waiting is None:
            call = call_from_record(record)
        else:
            ordered = (waiting[0][1],) if len(waiting) == 1 else tuple(item[1] for item in sorted(waiting, key=_first))
            call = call_from_record(record, ordered)
            del self.pending[key]
        accepted = self.accept(call)
        if accepted:
            self.on_call(call)
        recent = self.recent
        if key in recent:
            del recent[key]  # a repeated call id: the window holds its latest span
        recent[key] = call if accepted else None
        if len(recent) > self.recent_size:
            recent.popitem(last=False)

    def orphans(self) -> int:
        """Attempts whose call was not in the file (so far)."""
        return sum(len(waiting) for waiting in self.pending.values())
