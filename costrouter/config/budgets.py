"""The budget policy file (``configs/budgets.yaml``): the store, the defaults and the budgets.

:func:`load_policy` reads and validates the file; :meth:`BudgetPolicy.budgets_for`
tells which budget instances a call is charged to.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from costrouter.config.alerts import AlertSettings
from costrouter.config.budget_ref import GLOBAL_SCOPE_ID, BudgetRef, budget_key
from costrouter.config.reader import load_model
from costrouter.config.redaction import masked_repr_args
from costrouter.config.windows import WindowSpec, parse_window
from costrouter.errors import ConfigError, ConfigProblem
from costrouter.money import usd_to_units

Scope = Literal["session", "user", "team", "tag", "global"]
OnExceeded = Literal["reject", "downgrade", "warn"]

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

MAX_TTL_SECONDS: Final = 10 * 365 * 86400
"""Ten years: store TTLs above it are a typo, and far past it Redis refuses the expiry."""
MAX_LIMIT_USD: Final = 9_000_000.0
"""Limits stay below 2**53 units (nano-dollars, $9,007,199.25), the integers the Redis scripts' Lua
numbers hold exactly (:data:`costrouter.money.MAX_COUNTER_UNITS`)."""
MIN_LIMIT_USD: Final = 1e-9
"""One unit (a nano-dollar), the unit of the store: a smaller limit would round to $0."""
MAX_PRICE_PER_TOKEN: Final = 0.01
"""$10,000 per million tokens, far above any model's price: a higher one is a per-million price."""
MAX_OUTPUT_TOKENS: Final = 1_000_000
"""A cap beyond every model's output limit."""


def default_journal_dir() -> str:
    """``$XDG_STATE_HOME/costrouter/journal``, else ``~/.local/state/costrouter/journal``.

    State, not cache (it must survive a reboot) nor config; per user, so that every
    process of one user on one machine shares it and adopts the files of dead ones.
    """
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if Path(state).is_absolute() else Path.home() / ".local" / "state"  # XDG: relative is invalid
    return str(base / "costrouter" / "journal")


class LeaseSettings(BaseModel):
    """Per-process leases on Redis budgets: a slice reserved in one round trip, spent locally.

    A lease message holds ``in flight + need + extra`` for this process, where
    ``extra = min(calls x estimate, floor(fraction x (free - in flight - need)))`` and
    ``extra = 0`` when that is below ``min_calls x estimate``, where ``calls`` is 16, or the lease's
    demand (the calls it served since its last message plus those waiting for it) when more, at most
    ``max_calls``: near the limit every call
    reserves (through the lease script) for itself alone. ``free`` is the limit less the
    spend, the call holds and the other processes' leases. See the budgets documentation.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        description=(
            "Serve reserves and settles of Redis budgets from leases (the default); false: a Redis "
            "round trip per reserve and per settle."
        ),
    )
    max_calls: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description=(
            "A lease's spare room is at most this many times the call's estimate: 16 estimates, or the calls "
            "the lease served since its last message plus those waiting for it, when more."
        ),
    )
    fraction: float = Field(
        default=0.25,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="and at most this share of the budget's free remainder.",
    )
    min_calls: int = Field(
        default=2,
        ge=1,
        le=100_000,
        description="Spare room below this many estimates is not leased: the call reserves for itself alone.",
    )
    ttl_seconds: int = Field(
        default=30, ge=3, le=MAX_TTL_SECONDS, description="A lease not renewed by then returns to the budget."
    )
    flush_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        allow_inf_nan=False,
        description=(
            "Settled spend is carried to Redis this long after a lease's last message at the latest "
            "(plus a round trip): alerts and status see it then."
        ),
    )
    idle_seconds: float = Field(
        default=10,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description=(
            "A shared budget's lease no call used for this long is parked (see park_seconds), else given back."
        ),
    )
    park_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        description=(
            "An idle lease keeps room this long after idle_seconds, so the next call after a pause takes "
            "it without a round trip: a session's that called more than once (a chat) keeps its whole "
            "room (its quiet messages make it live park_seconds + ttl_seconds unrenewed: no park message), "
            "a shared budget's is parked to one estimate. 0: given back when idle."
        ),
    )


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
    hold_ttl_seconds: int = Field(
        default=300, ge=1, le=MAX_TTL_SECONDS, description="A hold not settled (nor renewed) by then is dropped."
    )
    settle_record_ttl_seconds: int = Field(
        default=86400, ge=1, le=MAX_TTL_SECONDS, description="How long a call id is remembered for idempotent replays."
    )
    on_store_error: Literal["fail_closed", "fail_open"] = Field(
        default="fail_closed", description="fail_closed refuses calls while the store fails; fail_open lets them pass."
    )
    timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        allow_inf_nan=False,
        description="Command timeout: how long one Redis command may take.",
    )
    connect_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, allow_inf_nan=False, description="How long opening one Redis connection may take."
    )
    max_connections: int = Field(
        default=16, ge=1, le=10_000, description="Connections per client (per node on a cluster), sync and async each."
    )
    pool_timeout_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="How long a command waits for a free connection of a full pool.",
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
        default=False,
        description=(
            "Keep a largest-spender index of each window (about 100 B per id; for fleets of millions of "
            "sessions); off: `budget top` scans the budget's window hashes on demand."
        ),
    )
    settle_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries of a settle or release before it goes to the journal."
    )
    journal_dir: str | None = Field(
        default_factory=default_journal_dir,
        min_length=1,
        description=(
            "Where settles the store could not take wait to be replayed (redis backend); null turns the "
            "journal off. Default: $XDG_STATE_HOME/costrouter/journal, else ~/.local/state/costrouter/journal."
        ),
    )
    journal_max_entries: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Pending settles the journal keeps; past that, logged and lost.",
    )
    lease: LeaseSettings = Field(
        default_factory=LeaseSettings,
        description="Per-process leases on Redis budgets (on by default; off: a round trip per call).",
    )
    on_store_lost: Literal["fail_closed", "warn"] = Field(
        default="fail_closed",
        description=(
            "A Redis that lost its data (restarted empty): fail_closed refuses calls until "
            "`costrouter budget accept-loss`; warn logs, marks the span and goes on."
        ),
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

    def __repr_args__(self) -> list[tuple[str | None, Any]]:
        return masked_repr_args(super().__repr_args__())


class PromptEstimate(BaseModel):
    """How many prompt tokens a call is held for: tiktoken's count made an upper bound.

    ``hold = ceil(counted x max(1, ratio) x safety_factor)``, where ``counted`` is the
    cl100k count plus per-message and per-call overheads and media bounds, and ``ratio``
    the largest provider ÷ counted ratio learned for the deployments the call can reach
    (``unlearned_ratio`` until one is learned). The README's budget section gives the
    measurements behind the defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    safety_factor: float = Field(
        default=1.3, ge=1, le=100, allow_inf_nan=False, description="Headroom over the learned ratio."
    )
    unlearned_ratio: float = Field(
        default=2.0, ge=1, le=100, allow_inf_nan=False, description="The ratio of a deployment not yet seen."
    )
    tokens_per_message: int = Field(default=6, ge=0, le=10_000, description="Chat-template tokens of one message.")
    tokens_per_call: int = Field(default=6, ge=0, le=10_000, description="Tokens that prime the reply, once a call.")
    learn: bool = Field(default=True, description="Learn each deployment's ratio from its reported prompt_tokens.")
    ratio_refresh_seconds: float = Field(
        default=5.0, gt=0, le=3600, allow_inf_nan=False, description="How long a process trusts its cached ratios."
    )
    ratio_decay: float = Field(
        default=0.02,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="A lower observation pulls the stored ratio this fraction of the way down (0: never).",
    )
    ratio_step: float = Field(
        default=2.0,
        ge=1,
        le=100,
        allow_inf_nan=False,
        description="One observation raises a ratio at most this many times (the first: from unlearned_ratio).",
    )
    ratio_max: float = Field(
        default=8.0, ge=1, le=1000, allow_inf_nan=False, description="No deployment's ratio goes past this."
    )
    ratio_half_life_seconds: float | None = Field(
        default=86_400.0,
        gt=0,
        le=365 * 86_400,
        allow_inf_nan=False,
        description="A ratio no answer confirmed for this long is halfway back to unlearned_ratio (null: never).",
    )
    unknown_file_tokens: int = Field(
        default=128_000, ge=1, le=100_000_000, description="A file given by id only (its size is unknown here)."
    )

    @model_validator(mode="after")
    def _cap_above_prior(self) -> PromptEstimate:
        if self.ratio_max < self.unlearned_ratio:
            message = f"ratio_max ({self.ratio_max}) is below unlearned_ratio ({self.unlearned_ratio})"
            raise ValueError(message)
        return self


class Defaults(BaseModel):
    """What a call is assumed to cost when the call or the model does not say."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_output_tokens: int = Field(
        default=4096,
        ge=1,
        le=MAX_OUTPUT_TOKENS,
        description="Output cap when a call has no max_tokens and the model's is unknown.",
    )
    input_cost_per_token: float = Field(default=0.00001, ge=0, le=MAX_PRICE_PER_TOKEN, allow_inf_nan=False)
    output_cost_per_token: float = Field(default=0.00003, ge=0, le=MAX_PRICE_PER_TOKEN, allow_inf_nan=False)
    on_interrupted: Literal["charge_hold", "release"] = Field(
        default="charge_hold",
        description=(
            "A call cancelled, interrupted or timed out after a provider received it: charge_hold charges "
            "its hold (never under-counts); release charges only what was observed."
        ),
    )
    prompt: PromptEstimate = PromptEstimate()
    max_audio_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=86400,
        allow_inf_nan=False,
        description=(
            "A transcription of a file whose duration is not in its header (not WAV) is held for its size "
            "at 8 kbit/s, at most this many seconds."
        ),
    )


class CostSettings(BaseModel):
    """Which cost settles the budget when the provider reports one, and how far apart is a mismatch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["computed", "provider"] = Field(
        default="computed",
        description="`computed` (costrouter's price model) or `provider` (the billed amount the response carries).",
    )
    tolerance_usd: float = Field(default=0.000001, ge=0, le=1, allow_inf_nan=False)
    tolerance_ratio: float = Field(default=0.01, ge=0, le=1, allow_inf_nan=False)


class Budget(BaseModel):
    """One budget of the policy: a limit per scope id and window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, pattern=_NAME_PATTERN)
    scope: Scope
    id: str | None = Field(default=None, min_length=1, description="Only this scope id (none: every id).")
    limit_usd: float = Field(gt=0, le=MAX_LIMIT_USD, allow_inf_nan=False)
    window: str = "total"
    on_exceeded: OnExceeded = "reject"
    downgrade_to: str | None = Field(default=None, min_length=1)
    alert_at: tuple[float, ...] = ()

    @field_validator("limit_usd")
    @classmethod
    def _check_limit(cls, value: float) -> float:
        if usd_to_units(value) < 1:
            message = f"limit_usd must be at least one nano-dollar ({MIN_LIMIT_USD:.0e}), not {value!r}"
            raise ValueError(message)
        return value

    @field_validator("window")
    @classmethod
    def _check_window(cls, value: str) -> str:
        spec = parse_window(value)
        if spec.seconds > MAX_TTL_SECONDS:
            message = f"a fixed window is at most {MAX_TTL_SECONDS // 86400}d (ten years), not {value!r}"
            raise ValueError(message)
        return spec.text

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
            limit_units=usd_to_units(self.limit_usd),
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

    # A rejected value (a sink URL with a token, a Redis URL with a password) never enters the error.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    store: StoreConfig = StoreConfig()
    defaults: Defaults = Defaults()
    cost: CostSettings = CostSettings()
    budgets: tuple[Budget, ...] = ()
    alerts: AlertSettings = AlertSettings()

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
