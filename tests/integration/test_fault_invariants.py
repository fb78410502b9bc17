"""Budget books stay exact under store faults: provider = spans = every counter, no limit crossed.

Each scenario runs against a redis-server of its own (see :mod:`tests.integration.faults`)
with the store's default timeouts; the figures are printed (``pytest -s``) for the
README's table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from costrouter.testing import ProviderDouble
from tests.integration import faults

SCENARIOS = [
    pytest.param("no fault", lambda server, done: None, id="baseline"),
    pytest.param("DEBUG SLEEP 0.6 s x3", faults.debug_sleep(), id="debug-sleep"),
    pytest.param("CLIENT PAUSE 0.8 s x2", faults.client_pause(), id="client-pause"),
    pytest.param("restart, data kept", faults.restart_keeping_data(), id="restart"),
    pytest.param("CPU hog beside the calls", faults.cpu_hog(), id="cpu-hog"),
]


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderDouble]:
    # A provider whose tokenizer counts 1.5x what tiktoken counts, as Claude's and Llama's do on some text.
    with ProviderDouble(prompt_token_factor=1.5) as double:
        yield double


@pytest.mark.parametrize("leases", [False, True], ids=["per-call", "leases"])
@pytest.mark.parametrize(("name", "fault"), SCENARIOS)
def test_books_balance_after_fault(
    name: str, fault: faults.Fault, leases: bool, provider: ProviderDouble, tmp_path: Path
) -> None:
    books = faults.run_scenario(name, fault, provider, tmp_path / "journal", lease={"enabled": leases})
    print("\n" + books.row())
    books.check()


@pytest.mark.parametrize("leases", [False, True], ids=["per-call", "leases"])
@pytest.mark.parametrize(("callers", "workers"), [("tasks", 16), ("threads", 4)])
def test_a_redis_restarted_empty_admits_nothing_to_concurrent_callers(
    callers: str, workers: int, leases: bool, provider: ProviderDouble, tmp_path: Path
) -> None:
    books = faults.run_restart_empty(
        provider, tmp_path / "journal", callers=callers, workers=workers, lease={"enabled": leases}
    )
    print("\n" + books.row())
    books.check()


def test_leases_whose_journal_cannot_grow_never_raise_after_billing(provider: ProviderDouble, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    books = faults.run_full_journal_with_leases(provider, tmp_path / "run" / "journal")
    print("\n" + books.row())
    books.check()


@pytest.mark.parametrize("leases", [False, True], ids=["per-call", "leases"])
def test_books_balance_when_answers_report_absurd_usage(leases: bool, provider: ProviderDouble, tmp_path: Path) -> None:
    # Every 5th of the first 40 answers reports completion_tokens: 1e20 (issue 25, finding 1).
    books = faults.run_scenario(
        "completion_tokens 1e20, 1 in 5",
        lambda server, done: None,
        provider,
        tmp_path / "journal",
        answers=faults.huge_usage_answers(),
        lease={"enabled": leases},
    )
    print("\n" + books.row())
    assert books.absurd_answers == 8
    books.check()
