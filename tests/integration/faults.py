"""Fault scenarios against a private redis-server, and the books checked after each.

A scenario routes calls from several threads through a real ``CostRouter`` (Redis
budgets per session, one team budget, one global budget, default store settings) on
the provider double, while a fault runs beside them: ``DEBUG SLEEP``, ``CLIENT PAUSE``,
a restart, a CPU hog. Afterwards the store is brought back, a new router is built on
the same policy (a new process would do the same: it replays what the first one could
not settle), and the books are read:

* what the provider double billed, priced at the deployments' prices;
* the cost on the routed calls' spans;
* every budget counter (sessions, team, global) and its limit.

The invariant: provider = spans = each counter family, to the unit, and no
counter of a ``reject`` budget above its limit. A scenario may script the provider's answers
(``answers``): an answer with an absurd usage figure (:data:`HUGE_TOKENS`) is charged the hold
of its call (see ``docs/budgets.md``), so "provider" then counts what the double billed for the
plausible answers plus the holds of the calls flagged ``router.usage.implausible``, and every
absurd answer must be flagged exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis

from costrouter import BudgetExceededError, BudgetStoreError, CostRouter
from costrouter.budget.factory import leased_store_of
from costrouter.money import usd_to_units
from costrouter.otel import semconv as sc
from costrouter.testing import ProviderDouble, Reply, TelemetryCapture
from costrouter.testing.provider import Answer, Behaviour
from costrouter.testing.redis_server import RedisServer
from tests.routing import PRICES, router_config

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "one call of a scenario under faults"}]
MAX_TOKENS = 20
TEAM = "team-faults"
SESSION_LIMIT_USD = 0.0006
TEAM_LIMIT_USD = 1.0
GLOBAL_LIMIT_USD = 1.0

MODEL_DEPLOYMENT = {
    "fast-model": "fast-primary",
    "fast-backup-model": "fast-backup",
    "capable-model": "capable-primary",
}


SCRIPT_COMMANDS = ("-eval", "-evalsha", "-eval_ro", "-evalsha_ro")


def admin(server: RedisServer, *command: Any) -> Any:
    """Run one command on a connection of its own (the budget scripts may be refused, ACL is not)."""
    client = redis.Redis.from_url(server.url, socket_timeout=30)
    try:
        return client.execute_command(*command)
    finally:
        client.close()


def refuse_scripts(server: RedisServer, *, refuse: bool) -> None:
    """Make the store refuse every budget script (NOPERM) without losing data, or take them back."""
    commands = SCRIPT_COMMANDS if refuse else tuple(c.replace("-", "+") for c in SCRIPT_COMMANDS)
    admin(server, "ACL", "SETUSER", "default", *commands)


def policy(redis_url: str, prefix: str, journal_dir: Path, **store: Any) -> dict[str, Any]:
    """Session, team and global budgets on Redis, with the store's defaults unless given."""
    return {
        "store": {
            "backend": "redis",
            "redis_url": redis_url,
            "key_prefix": prefix,
            "journal_dir": str(journal_dir),
            **store,
        },
        "budgets": [
            {"scope": "session", "limit_usd": SESSION_LIMIT_USD},
            {"scope": "team", "limit_usd": TEAM_LIMIT_USD},
            {"scope": "global", "limit_usd": GLOBAL_LIMIT_USD},
        ],
    }


HUGE_TOKENS = 10**20
"""The usage figure of an absurd answer (the red team's ``completion_tokens: 1e20``)."""


def huge_usage_answers(count: int = 40, every: int = 5) -> list[Behaviour]:
    """``count`` answers of which every ``every``-th reports ``completion_tokens: 1e20``."""
    huge = Reply(usage_details={"completion_tokens": HUGE_TOKENS})
    return [huge if index % every == 0 else Reply() for index in range(count)]


def _absurd(answer: Answer) -> bool:
    return answer.completion_tokens >= HUGE_TOKENS or answer.prompt_tokens >= HUGE_TOKENS


def provider_units(provider: ProviderDouble) -> int:
    """What the double billed for its plausible answers, priced per call at the answering deployment's prices."""
    total = 0
    for answer in provider.answers:
        if _absurd(answer):
            continue
        input_price, output_price = PRICES[MODEL_DEPLOYMENT[answer.model]]
        total += usd_to_units(answer.prompt_tokens * input_price + answer.completion_tokens * output_price)
    return total


@dataclass
class Outcomes:
    """How the routed calls of a scenario ended, as the callers saw them."""

    completed: int = 0
    rejected: int = 0
    store_errors: int = 0
    other_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, detail: str = "") -> None:
        with self.lock:
            if kind == "completed":
                self.completed += 1
            elif kind == "rejected":
                self.rejected += 1
            elif kind == "store_error":
                self.store_errors += 1
            else:
                self.other_errors.append(detail)


@dataclass(frozen=True)
class Books:
    """The figures of one scenario, printed and checked."""

    scenario: str
    outcomes: Outcomes
    provider_units: int
    span_units_by_session: dict[str, int]
    session_counters: dict[str, int]
    team_counter: int
    global_counter: int
    held_units: int
    session_limit_units: int
    absurd_answers: int = 0
    flagged_spans: int = 0
    flagged_holds_units: int = 0
    """The holds charged for the calls whose answers were flagged implausible."""

    @property
    def span_units(self) -> int:
        return sum(self.span_units_by_session.values())

    def row(self) -> str:
        """One line of the README's table."""
        return (
            f"| {self.scenario} | {self.outcomes.completed} | {self.outcomes.rejected} | "
            f"{self.outcomes.store_errors} | {self.provider_units + self.flagged_holds_units} | {self.span_units} | "
            f"{sum(self.session_counters.values())} | {self.team_counter} | {self.global_counter} | "
            f"{max(self.session_counters.values(), default=0)} / {self.session_limit_units} |"
        )

    def check(self) -> None:
        """provider = spans = sessions = team = global; no session counter past its limit; no hold left."""
        assert self.outcomes.other_errors == []
        assert self.provider_units > 0
        assert self.flagged_spans == self.absurd_answers
        billed = self.provider_units + self.flagged_holds_units
        assert self.span_units == billed
        assert self.session_counters == self.span_units_by_session
        assert self.team_counter == billed
        assert self.global_counter == billed
        assert max(self.session_counters.values()) <= self.session_limit_units
        assert self.held_units == 0


Fault = Callable[[RedisServer, threading.Event], None]


def debug_sleep(times: int = 3, seconds: float = 0.6, gap: float = 0.4) -> Fault:
    """The server stalls for longer than the store's timeout, a few times."""

    def fault(server: RedisServer, _: threading.Event) -> None:
        client = redis.Redis.from_url(server.url, socket_timeout=seconds + 5)
        try:
            for _ in range(times):
                time.sleep(gap)
                client.execute_command("DEBUG", "SLEEP", seconds)
        finally:
            client.close()

    return fault


def client_pause(times: int = 2, millis: int = 800, gap: float = 0.4) -> Fault:
    """``CLIENT PAUSE ... ALL``: every client's commands wait, as during a failover."""

    def fault(server: RedisServer, _: threading.Event) -> None:
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        try:
            for _ in range(times):
                time.sleep(gap)
                client.execute_command("CLIENT", "PAUSE", millis, "ALL")
                time.sleep(millis / 1000)
        finally:
            client.close()

    return fault


def restart_keeping_data(after: float = 0.5) -> Fault:
    """A clean restart (``SHUTDOWN SAVE``): connections drop, acknowledged writes survive."""

    def fault(server: RedisServer, _: threading.Event) -> None:
        time.sleep(after)
        server.restart_keeping_data()

    return fault


def cpu_hog() -> Fault:
    """A process keeps one of the machine's cores busy while the calls run."""

    def fault(_: RedisServer, done: threading.Event) -> None:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            done.wait()
        finally:
            hog.kill()
            hog.wait()

    return fault


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of the scenario's own, which it may stall, pause and restart."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _route(router: CostRouter, session: str, calls: int, outcomes: Outcomes) -> None:
    for _ in range(calls):
        try:
            router.route_completion("fast", MESSAGES, max_tokens=MAX_TOKENS, session_id=session, team_id=TEAM)
        except BudgetExceededError:
            outcomes.add("rejected")
        except BudgetStoreError:
            outcomes.add("store_error")
        except Exception as exc:  # reported by Books.check
            outcomes.add("other", repr(exc))
        else:
            outcomes.add("completed")


def run_scenario(
    name: str,
    fault: Fault,
    provider: ProviderDouble,
    journal_dir: Path,
    *,
    threads: int = 6,
    calls_per_thread: int = 30,
    answers: Sequence[Behaviour] = (),
    **store: Any,
) -> Books:
    """Route calls from ``threads`` threads while ``fault`` runs; recover; read the books.

    ``answers`` are what the provider answers first (then its default answer).
    """
    provider.reset()
    provider.script("fast-model", *answers)
    prefix = f"f{uuid.uuid4().hex[:10]}"
    with private_redis() as server:
        budgets = policy(server.url, prefix, journal_dir, **store)
        capture = TelemetryCapture()
        router = CostRouter(router_config(provider.base_url), budgets=budgets, tracer_provider=capture.tracer_provider)
        outcomes = Outcomes()
        sessions = [f"s{index}" for index in range(threads)]
        done = threading.Event()
        injector = threading.Thread(target=fault, args=(server, done), name=f"fault-{name}")
        workers = [
            threading.Thread(target=_route, args=(router, session, calls_per_thread, outcomes)) for session in sessions
        ]
        injector.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        done.set()
        injector.join()
        server.ensure_running()
        router.shutdown()
        # A new router on the same policy and journal settles what the first could not.
        recovered = CostRouter(router_config(provider.base_url), budgets=budgets, settings=router.settings)
        settled(recovered, sessions)
        books = read_books(name, recovered, capture, provider, sessions, outcomes)
        recovered.shutdown()
        capture.shutdown()
        return books


def unexplained_held(router: CostRouter, sessions: list[str]) -> int:
    """The held units of the scenario's budgets that no live lease of ``router`` holds (no call in flight).

    An idle lease parks one estimate for ``park_seconds``: held, and the router's own. Every other
    hold is a leak.
    """
    assert router.policy is not None
    assert router.store is not None
    leased = leased_store_of(router.store)
    budgets = {budget for session in sessions for budget in router.policy.budgets_for(session_id=session, team_id=TEAM)}
    held = sum(router.store.status(budget).held_units for budget in budgets)
    return held - (sum(leased.lease_hold(budget) for budget in budgets) if leased is not None else 0)


def _open_work(router: CostRouter, sessions: list[str]) -> tuple[int, int]:
    view = router.budgets
    assert view is not None
    return len(view.pending_settles()), unexplained_held(router, sessions)


def settled(router: CostRouter, sessions: list[str], deadline_seconds: float = 60.0) -> None:
    """Wait until the router's replay has emptied the journal, its leases carried their spend, and no hold is
    left but its leases' (or the deadline)."""
    deadline = time.monotonic() + deadline_seconds
    leased = leased_store_of(router.store)
    while time.monotonic() < deadline:
        if leased is not None:
            with contextlib.suppress(BudgetStoreError):  # the leases' settled spend, carried now
                leased.flush()
        if _open_work(router, sessions) == (0, 0):
            return
        time.sleep(0.1)


def read_books(
    name: str,
    router: CostRouter,
    capture: TelemetryCapture,
    provider: ProviderDouble,
    sessions: list[str],
    outcomes: Outcomes,
) -> Books:
    """The books of a scenario, read from the double, the spans and the store."""
    view = router.budgets
    assert view is not None
    span_units: dict[str, int] = defaultdict(int)
    flagged, flagged_holds = 0, 0
    for span in capture.call_spans():
        attributes = span.attributes or {}
        session = str(attributes.get(sc.SESSION_ID))
        cost = usd_to_units(float(attributes.get(sc.LLM_USAGE_COST_USD, 0.0)))  # type: ignore[arg-type]
        span_units[session] += cost
        if sc.ROUTER_USAGE_IMPLAUSIBLE in attributes:
            flagged += 1
            flagged_holds += usd_to_units(float(attributes[sc.BUDGET_ESTIMATE_USD]))  # type: ignore[arg-type]
            assert cost == usd_to_units(float(attributes[sc.BUDGET_ESTIMATE_USD]))  # type: ignore[arg-type]
    session_counters = {session: view.status("session", session)[0].spent_units for session in sessions}
    team = view.status("team", TEAM)[0]
    global_ = view.status("global")[0]
    held = unexplained_held(router, sessions)
    return Books(
        scenario=name,
        outcomes=outcomes,
        provider_units=provider_units(provider),
        span_units_by_session={session: span_units.get(session, 0) for session in sessions},
        session_counters=session_counters,
        team_counter=team.spent_units,
        global_counter=global_.spent_units,
        held_units=held,
        session_limit_units=usd_to_units(SESSION_LIMIT_USD),
        absurd_answers=sum(1 for answer in provider.answers if _absurd(answer)),
        flagged_spans=flagged,
        flagged_holds_units=flagged_holds,
    )


# ---- a Redis restarted empty while many callers route at once ----------------------------------
@dataclass(frozen=True)
class LossBooks:
    """The books of a restart-empty scenario: exact before the loss, nothing admitted after it."""

    before: Books
    requests_after: int
    outcomes_after: Outcomes
    counters_after: dict[str, int]
    held_after: int
    spans_after_units: int

    def row(self) -> str:
        """One line: the scenario before, then what the calls after the loss got."""
        after = self.outcomes_after
        return (
            f"{self.before.row()} after the loss: {self.requests_after} provider requests, "
            f"{after.completed} completed, {after.rejected} rejected, {after.store_errors} store errors"
        )

    def check(self) -> None:
        """Exact before; after the loss no request reached the provider, no counter moved, no hold left."""
        self.before.check()
        assert self.outcomes_after.other_errors == []
        assert self.requests_after == 0
        assert self.outcomes_after.completed == 0
        assert self.spans_after_units == 0
        assert set(self.counters_after.values()) == {0}
        assert self.held_after == 0


def _spend_to_the_limit(router: CostRouter, session: str, outcomes: Outcomes) -> None:
    while True:
        try:
            router.route_completion("fast", MESSAGES, max_tokens=MAX_TOKENS, session_id=session, team_id=TEAM)
        except BudgetExceededError:
            outcomes.add("rejected")
            return
        outcomes.add("completed")


async def _aroute(router: CostRouter, sessions: list[str], calls: int, offset: int, outcomes: Outcomes) -> None:
    for index in range(calls):
        session = sessions[(offset + index) % len(sessions)]
        try:
            await router.aroute_completion("fast", MESSAGES, max_tokens=MAX_TOKENS, session_id=session, team_id=TEAM)
        except BudgetExceededError:
            outcomes.add("rejected")
        except BudgetStoreError:
            outcomes.add("store_error")
        except Exception as exc:  # reported by LossBooks.check
            outcomes.add("other", repr(exc))
        else:
            outcomes.add("completed")


def _route_all(router: CostRouter, sessions: list[str], calls: int, offset: int, outcomes: Outcomes) -> None:
    for index in range(calls):
        _route(router, sessions[(offset + index) % len(sessions)], 1, outcomes)


def run_restart_empty(
    provider: ProviderDouble,
    journal_dir: Path,
    *,
    callers: str,
    workers: int,
    sessions: int = 8,
    calls_per_worker: int = 9,
    **store: Any,
) -> LossBooks:
    """Spend ``sessions`` sessions to their limits, restart Redis empty, then route from ``workers`` at once.

    ``callers``: ``"tasks"`` (async tasks on one loop) or ``"threads"``. Under
    ``on_store_lost: fail_closed`` (the default) every call after the loss is refused.
    """
    provider.reset()
    prefix = f"r{uuid.uuid4().hex[:10]}"
    names = [f"s{index}" for index in range(sessions)]
    with private_redis() as server:
        budgets = policy(server.url, prefix, journal_dir, **store)
        capture = TelemetryCapture()
        router = CostRouter(router_config(provider.base_url), budgets=budgets, tracer_provider=capture.tracer_provider)
        outcomes = Outcomes()
        for session in names:
            _spend_to_the_limit(router, session, outcomes)
        settled(router, names)
        before = read_books("restart empty", router, capture, provider, names, outcomes)
        requests_before, spans_before = provider.request_count(), len(capture.call_spans())

        server.restart()  # killed: every key is gone
        after = Outcomes()
        if callers == "tasks":

            async def burst() -> None:
                await asyncio.gather(*(_aroute(router, names, calls_per_worker, n, after) for n in range(workers)))

            asyncio.run(burst())
        else:
            threads = [
                threading.Thread(target=_route_all, args=(router, names, calls_per_worker, n, after))
                for n in range(workers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        spans_after = capture.call_spans()[spans_before:]
        spent_after = sum(
            usd_to_units(float((span.attributes or {}).get(sc.LLM_USAGE_COST_USD, 0.0)))  # type: ignore[arg-type]
            for span in spans_after
        )
        router.shutdown()
        reader = CostRouter(router_config(provider.base_url), budgets=budgets)
        view = reader.budgets
        assert view is not None
        counters = {session: view.status("session", session)[0].spent_units for session in names}
        counters["team"] = view.status("team", TEAM)[0].spent_units
        counters["global"] = view.status("global")[0].spent_units
        held = sum(view.status("session", session)[0].held_units for session in names)
        held += view.status("team", TEAM)[0].held_units + view.status("global")[0].held_units
        reader.shutdown()
        capture.shutdown()
        return LossBooks(before, provider.request_count() - requests_before, after, counters, held, spent_after)


# ---- leases whose journal cannot grow (a full disk, a quota) ------------------------------------
@dataclass(frozen=True)
class FullJournalBooks:
    """The books of the full-journal scenario, and what the worker's spans and ``budget status`` said."""

    books: Books
    report: dict[str, Any]

    def row(self) -> str:
        """The books' line, with the lease fault."""
        return f"{self.books.row()} lease fault: {self.report['fault']}"

    def check(self) -> None:
        """Exact books, no call raised after billing, and the fault on the spans and in ``budget status``."""
        self.books.check()
        report = self.report
        assert report["fault"] == "cannot grow (File too large)"
        assert report["degraded_events"] >= 1
        assert report["spans_with_fault"] >= 1
        assert report["status_exit"] == 0, report["status"]
        assert "journal fault:" in report["status"]
        assert "(File too large)" in report["status"]


def run_full_journal_with_leases(
    provider: ProviderDouble, journal_dir: Path, *, limit_bytes: int = 100, threads: int = 6, calls_per_thread: int = 20
) -> FullJournalBooks:
    """Route leased calls in a worker process whose files may not pass ``limit_bytes``; recover; read the books."""
    provider.reset()
    prefix = f"j{uuid.uuid4().hex[:10]}"
    sessions = [f"s{index}" for index in range(threads)]
    with private_redis() as server:
        budgets = policy(server.url, prefix, journal_dir, lease={"enabled": True})
        policy_file = journal_dir.parent / "budgets.json"
        policy_file.write_text(json.dumps(budgets))
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        command = [
            sys.executable,
            "-m",
            "tests.workers.full_journal_calls",
            str(policy_file),
            provider.base_url,
            str(limit_bytes),
            str(threads),
            str(calls_per_thread),
        ]
        worker = subprocess.run(command, capture_output=True, env=environment, cwd=ROOT, check=False)
        assert worker.returncode == 0, worker.stderr.decode()[-3000:]
        report = json.loads(worker.stdout.decode().strip().splitlines()[-1])
        outcomes = Outcomes(report["completed"], report["rejected"], report["store_errors"], report["other_errors"])
        recovered = CostRouter(router_config(provider.base_url), budgets=budgets)
        settled(recovered, sessions)
        capture = TelemetryCapture()  # the worker's spans came back as figures: none here
        books = read_books("journal cannot grow, leases", recovered, capture, provider, sessions, outcomes)
        books = replace(books, span_units_by_session={s: int(report["span_units"].get(s, 0)) for s in sessions})
        recovered.shutdown()
        capture.shutdown()
        return FullJournalBooks(books, report)
