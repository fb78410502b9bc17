"""What a tracing backend needs from costrouter: where to send, which signals, which names.

A :class:`Backend` is plain data plus two pure functions over span attributes, so the
telemetry module stays backend-agnostic: it builds the attributes every backend reads and
asks the backend for its own additions, on the call's one LLM span and on each step span.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from opentelemetry.util.types import AttributeValue

from costrouter.otel.conventions import KNOWN_NAMES, Convention, convention_of, left_out

Attributes = Mapping[str, AttributeValue]
SpanHook = Callable[[Attributes], dict[str, AttributeValue]]
EnvHook = Callable[[Mapping[str, str]], dict[str, str]]
Signal = Literal["traces", "metrics", "logs"]


def _nothing(_: Mapping[str, object]) -> dict[str, AttributeValue]:
    return {}


def _no_env(_: Mapping[str, str]) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Backend:
    """One backend's preset.

    ``base_env`` names the variable holding the backend's base URL (``default_base`` when
    unset); ``paths`` the URL path of each signal it ingests (a signal it has no route for is
    absent and is not exported). ``headers`` and ``resource`` read secrets and ids from the
    environment; ``llm_span`` / ``step_span`` add the backend's own span attributes.
    ``conventions`` are the naming conventions the backend reads
    (:mod:`costrouter.otel.conventions`); its spans carry those names only. ``None``: every one.
    """

    name: str
    base_env: str | None = None
    default_base: str | None = None
    paths: Mapping[Signal, str] = field(
        default_factory=lambda: {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}
    )
    headers: EnvHook = _no_env
    resource: EnvHook = _no_env
    llm_span: SpanHook = _nothing
    step_span: SpanHook = _nothing
    conventions: frozenset[Convention] | None = None

    def exports(self, signal: Signal) -> bool:
        """Whether the backend has a route for ``signal``."""
        return signal in self.paths

    def endpoint(self, signal: Signal, environ: Mapping[str, str]) -> str | None:
        """The full URL of ``signal`` from the base URL variable (or default); None when neither is set."""
        base = (environ.get(self.base_env) if self.base_env else None) or self.default_base
        if not base or signal not in self.paths:
            return None
        return base.rstrip("/") + self.paths[signal]

    @cached_property
    def _left_out(self) -> frozenset[str]:
        return left_out(self.conventions) if self.conventions is not None else frozenset()

    @property
    def adds_span_attributes(self) -> bool:
        """Whether the preset adds attributes of its own to the call's LLM span."""
        return self.llm_span is not _nothing

    def written(self, attributes: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        """``attributes`` less the names of conventions the backend does not read, removed in place.

        Set operations over the keys: a fixed name is looked up in :attr:`_left_out`, and only a
        name built at run time (metadata, message contents) is classified one by one.
        """
        conventions = self.conventions
        if conventions is None:
            return attributes
        for key in self._left_out.intersection(attributes):
            del attributes[key]
        if not KNOWN_NAMES.issuperset(attributes):
            for key in [key for key in attributes if key not in KNOWN_NAMES and convention_of(key) not in conventions]:
                del attributes[key]
        return attributes

    def llm_span_attributes(self, attributes: Attributes) -> dict[str, AttributeValue]:
        """The backend's additions to the call's LLM span, from the attributes written so far."""
        return self.llm_span(attributes)

    def step_span_attributes(self, attributes: Attributes) -> dict[str, AttributeValue]:
        """The backend's additions to an attempt (step) span."""
        return self.step_span(attributes)


NO_BACKEND = Backend("none")
"""No preset: the standard OTEL_* variables alone, no extra attributes."""


def bearer(variable: str, header: str = "authorization") -> EnvHook:
    """A ``{header}: Bearer $variable`` header when the variable is set."""

    def headers(environ: Mapping[str, str]) -> dict[str, str]:
        value = environ.get(variable)
        return {header: f"Bearer {value}"} if value else {}

    return headers


def from_env(names: Mapping[str, str]) -> EnvHook:
    """``{key: $variable}`` for each ``key: variable`` of ``names`` whose variable is set."""

    def read(environ: Mapping[str, str]) -> dict[str, str]:
        return {key: environ[variable] for key, variable in names.items() if environ.get(variable)}

    return read


def combine(*hooks: EnvHook) -> EnvHook:
    """Merge what several hooks return, later ones winning."""

    def read(environ: Mapping[str, str]) -> dict[str, str]:
        merged: dict[str, str] = {}
        for hook in hooks:
            merged.update(hook(environ))
        return merged

    return read
