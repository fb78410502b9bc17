"""Every exception costrouter raises.

::

    CostRouterError
    ├── ConfigError             a configuration file or object is invalid (file, field path, reason)
    ├── BudgetExceededError     a budget refused a call before any provider was called
    ├── BudgetStoreError        the budget store (Redis) failed and the policy is fail_closed
    ├── OutboundError           a request to a configured URL (alert sink, price push) failed
    ├── PushError               a backend refused or failed a price push
    └── MissingExtraError       the call needs a package of an extra that is not installed

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
        line = ""
        if self.line is not None:  # a line of an included file knows its file
            file = getattr(self.line, "file", None)
            line = f" ({file} line {self.line})" if file else f" (line {self.line})"
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


class StoreLayoutError(CostRouterError):
    """The budget store holds another costrouter version's key layout: run ``costrouter budget migrate``.

    Not a :class:`BudgetStoreError`: no ``on_store_error`` policy lets a call count beside it.
    """


class OutboundError(CostRouterError):
    """An HTTP request to a URL the configuration names failed; the message never shows the URL.

    ``retryable`` says whether another try may succeed (a timeout, a refused connection).
    """

    def __init__(self, reason: str, *, retryable: bool) -> None:
        self.reason = reason
        self.retryable = retryable
        super().__init__(reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), {"reason": self.reason, "retryable": self.retryable}))


class PushError(CostRouterError):
    """A backend refused or failed a price push (one line: which backend, its masked URL, why)."""


class MissingExtraError(CostRouterError):
    """The call needs packages of an extra that is not installed; no hold was made, no provider called.

    ``extra`` names the extra to install (``anthropic``: ``pip install 'costrouter-litellm[anthropic]'``),
    ``modules`` the packages missing, ``needed_for`` what in the call needs them.
    """

    def __init__(self, extra: str, modules: Sequence[str], needed_for: str) -> None:
        self.extra = extra
        self.modules = tuple(modules)
        self.needed_for = needed_for
        super().__init__(
            f"{needed_for} needs {', '.join(self.modules)}, not installed: pip install 'costrouter-litellm[{extra}]'"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.extra, self.modules, self.needed_for))


def _rebuild(cls: type[CostRouterError], fields: dict[str, Any]) -> CostRouterError:
    """Unpickle an error whose constructor takes keyword arguments only."""
    return cls(**fields)
