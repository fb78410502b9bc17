"""Every exception costrouter raises.

::

    CostRouterError
    ├── ConfigError             a configuration file or object is invalid (file, field path, reason)
    ├── BudgetExceededError     a budget refused a call before any provider was called
    └── BudgetStoreError        the budget store (Redis) failed and the policy is fail_closed

LiteLLM's own exceptions (``litellm.RateLimitError`` …) reach the caller unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class CostRouterError(Exception):
    """The base of every costrouter error."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a configuration: where (field path, line) and why."""

    location: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.location or "<root>"
        line = f" (line {self.line})" if self.line is not None else ""
        return f"{where}{line}: {self.reason}"


class ConfigError(CostRouterError):
    """A configuration file or object is invalid.

    ``source`` names the file (or ``<dict>`` for an in-memory object); ``problems``
    lists each field path with its reason, so a user can fix them all at once.
    """

    def __init__(self, source: str, problems: Sequence[ConfigProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.problems))

    @classmethod
    def single(cls, source: str, location: str, reason: str, line: int | None = None) -> ConfigError:
        """An error with one problem."""
        return cls(source, [ConfigProblem(location, reason, line)])


class BudgetExceededError(CostRouterError):
    """A budget refused the call: ``spent + held + estimate`` would pass ``limit``.

    Amounts are in USD; the provider was not called.
    """

    def __init__(
        self,
        *,
        scope: str,
        scope_id: str,
        budget: str,
        limit_usd: float,
        spent_usd: float,
        held_usd: float,
        estimate_usd: float,
        window: str | None = None,
    ) -> None:
        self.scope = scope
        self.scope_id = scope_id
        self.budget = budget
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.held_usd = held_usd
        self.estimate_usd = estimate_usd
        self.window = window
        """The budget's window as its policy wrote it (``total``, ``1d``, ``monthly`` …), when known."""
        super().__init__(
            f"budget {budget!r} for {scope} {scope_id!r} exceeded: limit ${limit_usd:.6f}, "
            f"spent ${spent_usd:.6f}, held ${held_usd:.6f}, this call needs up to ${estimate_usd:.6f}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        fields = ("scope", "scope_id", "budget", "limit_usd", "spent_usd", "held_usd", "estimate_usd", "window")
        return (_rebuild, (type(self), {name: getattr(self, name) for name in fields}))


class BudgetStoreError(CostRouterError):
    """The budget store failed (unreachable, slow, refusing); the original error is ``__cause__``."""

    def __init__(self, operation: str, cause: BaseException) -> None:
        self.operation = operation
        self.cause = cause
        super().__init__(f"budget store failed during {operation}: {type(cause).__name__}: {cause}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.operation, self.cause))


def _rebuild(cls: type[BudgetExceededError], fields: dict[str, Any]) -> BudgetExceededError:
    """Unpickle an error whose constructor takes keyword arguments only."""
    return cls(**fields)
