"""The budget policy file (``configs/budgets.yaml``): the store, the defaults and the budgets.

:func:`load_policy` reads and validates the file; :meth:`BudgetPolicy.budgets_for`
tells which budget instances a call is charged to.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from costrouter._yaml import load_model
from costrouter.budget.store import GLOBAL_SCOPE_ID, BudgetRef, budget_key
from costrouter.budget.windows import WindowSpec, parse_window
from costrouter.errors import ConfigError, ConfigProblem
from costrouter.money import usd_to_micros

Scope = Literal["session", "user", "team", "tag", "global"]
OnExceeded = Literal["reject", "downgrade", "warn"]

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class StoreConfig(BaseModel):
    """Where budget counters live and how the store behaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["memory", "redis"] = Field(
        default="memory", description="memory: in this process (the default); redis: shared."
    )
    redis_url: str = Field(
        default="redis://localhost:6379/0", description="Used by the redis backend; COSTROUTER_REDIS_URL wins."
    )
    key_prefix: str = Field(default="costrouter", pattern=r"^[^{}]+$", description="The first part of every Redis key.")
    hold_ttl_seconds: int = Field(default=300, ge=1, description="A hold not settled by then is dropped.")
    settle_record_ttl_seconds: int = Field(
        default=86400, ge=1, description="How long a call id is remembered for idempotent replays."
    )
    on_store_error: Literal["fail_closed", "fail_open"] = Field(
        default="fail_closed", description="fail_closed refuses calls while the store fails; fail_open lets them pass."
    )
    timeout_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="Command timeout: how long one Redis command may take."
    )
    connect_timeout_seconds: float = Field(
        default=2.0, gt=0, le=3600, description="How long opening one Redis connection may take."
    )
    max_connections: int = Field(
        default=16, ge=1, le=10_000, description="Connections per client (per node on a cluster), sync and async each."
    )
    pool_timeout_seconds: float = Field(
        default=30, gt=0, le=3600, description="How long a command waits for a free connection of a full pool."
    )
    warm_connections: int = Field(
        default=16, ge=0, le=10_000, description="Connections opened (and scripts loaded) at a client's first use."
    )
    cluster: bool = Field(
        default=False,
        description=(
            "Redis Cluster: the top index (another slot) is updated by the client after each settle, "
            "one more round trip; on a standalone Redis the settle script updates it."
        ),
    )
    settle_wait_replicas: int | None = Field(
        default=None,
        ge=0,
        le=16,
        description=(
            "After each settle, WAIT until this many replicas have it (none: 1 on a cluster, else 0), "
            "so that a failover cannot lose it."
        ),
    )
    settle_wait_ms: int = Field(
        default=50, ge=1, le=60_000, description="How long a settle waits for its replicas before going on."
    )
    top_index: bool = Field(
        default=True, description="Keep the largest-spender index of each window (costs memory per id)."
    )

    @property
    def settle_replicas(self) -> int:
        """The replicas each settle waits for: ``settle_wait_replicas``, else 1 on a cluster, 0 otherwise."""
        if self.settle_wait_replicas is not None:
            return self.settle_wait_replicas
        return 1 if self.cluster else 0

    @property
    def record_ttl_seconds(self) -> int:
        """How long a call's record lives: at least as long as its hold."""
        return max(self.hold_ttl_seconds, self.settle_record_ttl_seconds)


class Defaults(BaseModel):
    """What a call is assumed to cost when the call or the model does not say."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_output_tokens: int = Field(
        default=4096, ge=1, description="Output cap when a call has no max_tokens and the model's is unknown."
    )
    input_cost_per_token: float = Field(default=0.00001, ge=0, allow_inf_nan=False)
    output_cost_per_token: float = Field(default=0.00003, ge=0, allow_inf_nan=False)


class Budget(BaseModel):
    """One budget of the policy: a limit per scope id and window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, pattern=_NAME_PATTERN)
    scope: Scope
    id: str | None = Field(default=None, min_length=1, description="Only this scope id (none: every id).")
    limit_usd: float = Field(gt=0, allow_inf_nan=False)
    window: str = "total"
    on_exceeded: OnExceeded = "reject"
    downgrade_to: str | None = Field(default=None, min_length=1)
    alert_at: tuple[float, ...] = ()

    @field_validator("window")
    @classmethod
    def _check_window(cls, value: str) -> str:
        return parse_window(value).text

    @field_validator("alert_at")
    @classmethod
    def _check_alerts(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        for threshold in value:
            if not (math.isfinite(threshold) and 0 < threshold <= 1):
                message = f"alert thresholds are fractions of the limit in (0, 1], not {threshold}"
                raise ValueError(message)
        if list(value) != sorted(set(value)):
            message = "alert thresholds must be sorted and unique"
            raise ValueError(message)
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Budget:
        if self.on_exceeded == "downgrade" and self.downgrade_to is None:
            message = "downgrade_to (a cheaper model group) is required when on_exceeded is downgrade"
            raise ValueError(message)
        if self.on_exceeded != "downgrade" and self.downgrade_to is not None:
            message = "downgrade_to is only allowed when on_exceeded is downgrade"
            raise ValueError(message)
        if self.scope == "global" and self.id is not None:
            message = "a global budget has no id"
            raise ValueError(message)
        return self

    @property
    def budget_name(self) -> str:
        """The explicit name, or one derived from scope, id and window (``team-research-monthly``)."""
        if self.name is not None:
            return self.name
        parts = [self.scope] if self.id is None else [self.scope, self.id]
        return "-".join([*parts, self.window])

    @property
    def window_spec(self) -> WindowSpec:
        """The parsed window."""
        return parse_window(self.window)

    def ref(self, scope_id: str) -> BudgetRef:
        """The budget instance of ``scope_id``."""
        return BudgetRef(
            name=self.budget_name,
            scope=self.scope,
            scope_id=scope_id,
            window=self.window_spec,
            limit_micros=usd_to_micros(self.limit_usd),
            alert_at=self.alert_at,
            on_exceeded=self.on_exceeded,
            downgrade_to=self.downgrade_to,
        )

    def scope_ids(self, ids: dict[str, tuple[str, ...]]) -> list[str]:
        """The scope ids of a call that this budget applies to; ``ids`` maps scope to ids."""
        if self.scope == "global":
            return [GLOBAL_SCOPE_ID]
        present = ids.get(self.scope, ())
        if self.id is None:
            return list(present)
        return [self.id] if self.id in present else []


class BudgetPolicy(BaseModel):
    """The whole policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: StoreConfig = StoreConfig()
    defaults: Defaults = Defaults()
    budgets: tuple[Budget, ...] = ()

    @field_validator("budgets")
    @classmethod
    def _check_unique_names(cls, value: tuple[Budget, ...]) -> tuple[Budget, ...]:
        seen: dict[str, int] = {}
        for index, budget in enumerate(value):
            name = budget.budget_name
            if name in seen:
                message = f"budget name {name!r} of budgets[{index}] is already used by budgets[{seen[name]}]"
                raise ValueError(message)
            seen[name] = index
        return value

    def budgets_of(self, scope: str, scope_id: str | None = None, name: str | None = None) -> list[Budget]:
        """The budgets of ``scope`` that apply to ``scope_id`` (any id when ``None``), only ``name`` if given."""
        return [
            budget
            for budget in self.budgets
            if budget.scope == scope
            and (scope_id is None or budget.id in (None, scope_id))
            and (name is None or budget.budget_name == name)
        ]

    def check_downgrade_targets(self, groups: Collection[str], source: str) -> None:
        """Raise a ConfigError naming every ``downgrade_to`` that is not one of ``groups``."""
        problems = [
            ConfigProblem(f"budgets[{index}].downgrade_to", f"unknown model group {budget.downgrade_to!r}")
            for index, budget in enumerate(self.budgets)
            if budget.downgrade_to is not None and budget.downgrade_to not in groups
        ]
        if problems:
            raise ConfigError(source, problems)

    def budgets_for(
        self,
        session_id: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        tags: Iterable[str] = (),
    ) -> list[BudgetRef]:
        """Every budget instance a call with these ids is charged to, sorted by store key.

        A budget with an ``id`` applies only when the call's id of its scope matches; a
        tag budget applies once per tag of the call; a global budget always applies; a
        scope the call has no id for is skipped. The order is fixed, so that reserving
        several budgets one after the other cannot deadlock.
        """
        ids: dict[str, tuple[str, ...]] = {
            "session": (session_id,) if session_id else (),
            "user": (user_id,) if user_id else (),
            "team": (team_id,) if team_id else (),
            "tag": tuple(sorted({tag for tag in tags if tag})),
        }
        refs = [budget.ref(scope_id) for budget in self.budgets for scope_id in budget.scope_ids(ids)]
        return sorted(refs, key=lambda ref: budget_key(self.store.key_prefix, ref))


def load_policy(path: str | Path) -> BudgetPolicy:
    """Read and validate a budget policy file; every problem is reported in one ConfigError."""
    return load_model(BudgetPolicy, path)
