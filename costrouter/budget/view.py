"""Read and manage budgets by scope and id: ``router.budgets.status("session", "sess-1")``."""

from __future__ import annotations

import datetime
from dataclasses import replace

from costrouter.budget import BudgetPolicy, BudgetRef, BudgetStatus, BudgetStore
from costrouter.budget.factory import journal_directory, redis_store_of
from costrouter.budget.journal import JournalFault, PendingSettle, read_faults, read_pending
from costrouter.config.budget_ref import GLOBAL_SCOPE_ID
from costrouter.pricing.ratio_rule import LearnedRatio, RatioRule, aged_ratio

SCOPES = ("session", "user", "team", "tag", "global")


class BudgetsView:
    """Spend, holds and what remains, per scope and id, for applications and the CLI."""

    def __init__(self, policy: BudgetPolicy, store: BudgetStore) -> None:
        self.policy = policy
        self.store = store

    def refs(self, scope: str, scope_id: str | None = None) -> list[BudgetRef]:
        """Every budget of ``scope`` that applies to ``scope_id`` (``global`` needs no id)."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(SCOPES)}")
        if scope == "global":
            scope_id = GLOBAL_SCOPE_ID
        elif not scope_id:
            raise ValueError(f"a {scope} budget needs an id")
        return [budget.ref(scope_id) for budget in self.policy.budgets_of(scope, scope_id)]

    def status(self, scope: str, scope_id: str | None = None) -> list[BudgetStatus]:
        """The current window of each budget of ``scope`` for ``scope_id``."""
        return [self.store.status(ref) for ref in self.refs(scope, scope_id)]

    async def astatus(self, scope: str, scope_id: str | None = None) -> list[BudgetStatus]:
        """The async twin of :meth:`status`."""
        return [await self.store.astatus(ref) for ref in self.refs(scope, scope_id)]

    def pending_settles(self) -> list[PendingSettle]:
        """Settles waiting in this machine's journal for the store (not in ``spent`` until replayed)."""
        directory = journal_directory(self.policy, self.store)
        return [] if directory is None else [e for e in read_pending(directory) if e.state == "settle"]

    def journal_faults(self) -> list[JournalFault]:
        """Journal files of this machine's store that could not grow (a full disk, a quota) when last written."""
        directory = journal_directory(self.policy, self.store)
        return [] if directory is None else read_faults(directory)

    def journal_fault_lines(self) -> list[str]:
        """:meth:`journal_faults`, one line each, for a terminal."""
        lines = []
        for fault in self.journal_faults():
            since = datetime.datetime.fromtimestamp(fault.since, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            lines.append(
                f"journal fault: {fault.path} could not grow ({fault.reason}) at {since}: its router runs "
                "budget leases per call, and a settle the store refuses now is lost"
            )
        return lines

    def lag_note(self) -> str | None:
        """What ``status`` may not show yet, with routers on leases (the default on Redis); else ``None``."""
        store = self.policy.store
        if store.backend != "redis" or not store.lease.enabled:
            return None
        return (
            "figures can lag: routers on budget leases carry settled spend to Redis within "
            f"{store.lease.flush_seconds:g} s (store.lease.flush_seconds, plus one round trip; longer while "
            "Redis fails), and a lease shows as held until it is given back"
        )

    def top_scan_note(self) -> str | None:
        """How the last ``top`` of a Redis store without ``top_index`` was built (keys scanned); else ``None``."""
        redis_store = redis_store_of(self.store)
        scan = None if redis_store is None else redis_store.last_top_scan
        if scan is None:
            return None
        stopped = "" if scan.complete else ", stopped there (more keys remain)"
        return f"built on demand: scanned {scan.scanned} window keys{stopped} (store.top_index is off)"

    def reset(self, scope: str, scope_id: str | None = None) -> list[str]:
        """Clear the current window's spend and holds; returns the names of the budgets reset."""
        refs = self.refs(scope, scope_id)
        for ref in refs:
            self.store.reset(ref)
        return [ref.name for ref in refs]

    def token_ratios(self) -> dict[str, LearnedRatio]:
        """Each deployment's learned prompt-token ratio, as the next call uses it (aged, within the cap)."""
        rule = RatioRule.of(self.policy.defaults.prompt)
        return {
            deployment_id: replace(learned, ratio=aged_ratio(learned.ratio, learned.age_seconds, rule))
            for deployment_id, learned in sorted(self.store.token_ratios().items())
        }

    def reset_token_ratios(self, deployment_id: str | None = None) -> list[str]:
        """Forget the learned ratio of ``deployment_id`` (``None``: every one); the deployments forgotten.

        Routers on the store take ``unlearned_ratio`` again at their next refresh.
        """
        return self.store.reset_token_ratios(deployment_id)

    def top(self, scope: str, n: int = 10) -> dict[str, list[tuple[str, int]]]:
        """The largest spenders (id, units) of each budget of ``scope``, current window."""
        placeholder = GLOBAL_SCOPE_ID if scope == "global" else "*"
        return {
            budget.budget_name: self.store.top(budget.ref(budget.id or placeholder), n)
            for budget in self.policy.budgets_of(scope)
        }
