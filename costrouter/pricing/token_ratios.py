"""Each deployment's prompt-token ratio (provider's ``prompt_tokens`` ÷ costrouter's count), learned and shared.

The ratios live in the budget store, so every process that shares it learns from every
answered call. A process keeps a copy and reads the store again at most once per
``ratio_refresh_seconds``; the common call makes no extra round trip. Only the process's first
read is on a call's path (its estimate needs the ratios); with :attr:`TokenRatios.background`
set (a remote store), later reads and every lesson go through it, off the callers' path, and
the copy takes the store's answer when it comes.

Learning goes up fast and down slowly, by the rule of :mod:`costrouter.pricing.ratio_rule`:
an observation above the known ratio is sent immediately and raises it, at most
``ratio_step`` times and never past ``ratio_max`` (an under-estimate can overspend a limit,
so it must not last; one lying answer must not refuse every later call); observations below
it are kept, and the lowest ratio of each deployment that a refresh period proved (its
largest observation) is sent once per period, pulling the stored ratio ``ratio_decay`` of
the way down. A ratio no answer confirmed for ``ratio_half_life_seconds`` is halfway back
to ``unlearned_ratio``. A deployment never answered yet takes the ratio learned for another
deployment of the same model (the same tokenizer), else the policy's ``unlearned_ratio``.
A refresh replaces the copy with the store's: a ratio reset there (``costrouter budget
ratios --reset``) is forgotten here too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from costrouter.config.budgets import PromptEstimate
from costrouter.errors import BudgetStoreError
from costrouter.ops import Flow, StoreOp
from costrouter.pricing.ratio_rule import LearnedRatio, RatioRule, aged_ratio, next_token_ratio

logger = logging.getLogger("costrouter.budget")


class RatioStore(Protocol):
    """The part of a budget store the ratios use (its sync API, from a background thread)."""

    def token_ratios(self) -> dict[str, LearnedRatio]:
        """Every learned ratio in the store."""

    def observe_token_ratio(self, deployment_id: str, ratio: float, rule: RatioRule) -> float:
        """Teach the store one observation; its ratio after the lesson."""


Background = Callable[[Callable[[RatioStore], None]], bool]
"""Runs a store call off the callers' path (:class:`costrouter.budget.background.StoreWorker`)."""


class TokenRatios:
    """The in-process view of the learned ratios, and the flows that read and teach the store."""

    def __init__(
        self,
        settings: PromptEstimate,
        models: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """An empty view; the first call that needs a ratio reads the store.

        ``models`` maps deployment ids to their model: a deployment not yet learned takes
        the ratio learned for another deployment of the same model (the same tokenizer).
        """
        self.settings = settings
        self.rule = RatioRule.of(settings)
        self.models = dict(models or {})
        self.clock = clock
        self.ratios: dict[str, float] = {}
        self._read_at: float | None = None
        self._pending: dict[str, float] = {}
        self._sent_at: dict[str, float] = {}
        self.background: Background | None = None
        """Where store calls go after the first read (``None``: on the call's path, as ops)."""

    def ratio(self, deployment_ids: Iterable[str]) -> float:
        """The largest ratio over ``deployment_ids``.

        One not learned yet counts the largest ratio learned for its model, else ``unlearned_ratio``.
        """
        ratios = self.ratios
        largest: float | None = None
        for deployment_id in deployment_ids:  # a loop, not max() over a generator: once per estimate
            ratio = ratios.get(deployment_id)
            if ratio is None:
                ratio = self._ratio_of(deployment_id)
            if largest is None or ratio > largest:
                largest = ratio
        return self.settings.unlearned_ratio if largest is None else largest

    @property
    def _unlearned(self) -> float:
        return self.settings.unlearned_ratio

    def _ratio_of(self, deployment_id: str) -> float:
        learned = self.ratios.get(deployment_id)
        if learned is not None:
            return learned
        model = self.models.get(deployment_id)
        if model is None or not self.ratios:
            return self.settings.unlearned_ratio
        siblings = [ratio for other, ratio in self.ratios.items() if self.models.get(other) == model]
        return max(siblings, default=self._unlearned)

    def refresh_flow(self) -> Flow[None]:
        """Read the store's ratios when the copy is older than ``ratio_refresh_seconds``.

        The first read is on the call's path; later ones go to :attr:`background` when set.
        """
        now = self.clock()
        if self._read_at is not None and now - self._read_at < self.settings.ratio_refresh_seconds:
            return
        first = self._read_at is None
        self._read_at = now  # concurrent calls keep the old copy meanwhile: one read per period
        if self.background is not None and not first:
            self.background(self._read)
            return
        try:
            stored: dict[str, LearnedRatio] = yield StoreOp("token_ratios", ())
        except BudgetStoreError as exc:
            _read_failed(exc)
            return
        self._adopt(stored)

    def _read(self, store: RatioStore) -> None:
        try:
            stored = store.token_ratios()
        except BudgetStoreError as exc:
            _read_failed(exc)
            return
        self._adopt(stored)

    def _adopt(self, stored: Mapping[str, LearnedRatio]) -> None:
        self.ratios = {d: aged_ratio(learned.ratio, learned.age_seconds, self.rule) for d, learned in stored.items()}

    def observe_flow(self, deployment_id: str | None, reported: int | None, counted: int | None) -> Flow[None]:
        """Learn from a call the provider answered with its own ``prompt_tokens`` (through :attr:`background`)."""
        if not self.settings.learn or deployment_id is None or not reported or not counted:
            return
        observed = reported / counted
        known = self.ratios.get(deployment_id)
        now = self.clock()
        if known is not None and observed <= known:
            self._pending[deployment_id] = max(observed, self._pending.get(deployment_id, 0.0))
            if now - self._sent_at.get(deployment_id, 0.0) < self.settings.ratio_refresh_seconds:
                return
            observed = self._pending.pop(deployment_id)
        else:  # raise at once here (by the rule's bounded step); the store's answer follows
            self.ratios[deployment_id] = next_token_ratio(
                None if known is None else LearnedRatio(known, 1, 0.0), observed, self.rule
            )
        self._sent_at[deployment_id] = now
        if self.background is not None:
            self.background(lambda store: self._teach(store, deployment_id, observed))
            return
        try:
            stored: float = yield StoreOp("observe_token_ratio", (deployment_id, observed, self.rule))
        except BudgetStoreError as exc:
            _teach_failed(deployment_id, exc)
            return
        self.ratios[deployment_id] = stored

    def _teach(self, store: RatioStore, deployment_id: str, observed: float) -> None:
        try:
            stored = store.observe_token_ratio(deployment_id, observed, self.rule)
        except BudgetStoreError as exc:
            _teach_failed(deployment_id, exc)
            return
        self.ratios[deployment_id] = stored


def _read_failed(error: BudgetStoreError) -> None:
    logger.warning("costrouter: could not read the learned token ratios: %s", error)


def _teach_failed(deployment_id: str, error: BudgetStoreError) -> None:
    logger.warning("costrouter: could not store the token ratio of %s: %s", deployment_id, error)
