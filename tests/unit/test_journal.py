"""The settle journal on disk: crash safety, adoption of dead processes' files, the bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from costrouter.budget import BudgetPolicy
from costrouter.budget.journal import PendingSettle, SettleJournal, journal_dir_for, new_entry, read_pending
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.budgets import default_journal_dir
from costrouter.config.windows import parse_window

BUDGET = BudgetRef("session-total", "session", "s-1", parse_window("total"), 1_000_000, (0.5,), "reject", None)


def settle(amount: int, call_id: str = "c") -> PendingSettle:
    return new_entry(BUDGET, call_id, amount, "settle")


def release(call_id: str = "r") -> PendingSettle:
    return new_entry(BUDGET, call_id, 0, "release")


def test_an_entry_round_trips_through_its_line() -> None:
    entry = new_entry(BudgetRef("d", "tag", "x", parse_window("30d"), 5, (), "downgrade", "cheap"), "c1", 7, "settle")
    assert PendingSettle.from_json(json.loads(json.dumps(entry.to_json()))) == entry


def test_pending_entries_survive_the_process_and_a_torn_last_line(tmp_path: Path) -> None:
    journal = SettleJournal(tmp_path)
    kept = settle(10, "c1")
    journal.append(kept)
    journal.append(settle(20, "c2"))
    journal.mark_done(journal.pending()[1].id)
    with journal.path.open("a") as file:
        file.write('{"kind": "pending", "id": "torn", "call_')  # a crash mid-write
    journal.close()  # entries wait: the file stays for the next process

    assert read_pending(tmp_path) == [kept]
    successor = SettleJournal(tmp_path)
    assert successor.adopt() == 1
    assert successor.pending() == [kept]
    assert [p.name for p in tmp_path.glob("journal-*.jsonl")] == [successor.path.name]
    successor.mark_done(kept.id)
    assert successor.path.stat().st_size == 0  # nothing pending: the file is emptied
    successor.close()
    assert list(tmp_path.glob("journal-*.jsonl")) == []


def test_a_live_process_keeps_its_file(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from tests.unit.test_journal import settle\n"
        "from costrouter.budget.journal import SettleJournal\n"
        "journal = SettleJournal(sys.argv[1])\n"
        "journal.append(settle(5))\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": str(root)}
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment
    ) as live:
        assert live.stdout is not None
        assert live.stdout.readline().strip() == b"ready"
        journal = SettleJournal(tmp_path)
        assert journal.adopt() == 0  # its lock is held: the process is alive
        assert len(read_pending(tmp_path)) == 1
        live.kill()  # dies without closing: the kernel drops its lock
        live.wait()
        assert journal.adopt() == 1
        journal.close()


def test_the_bound_keeps_settles_before_releases(tmp_path: Path) -> None:
    journal = SettleJournal(tmp_path, max_entries=2)
    assert journal.append(release("r1"))
    assert journal.append(settle(10, "c1"))
    assert not journal.append(release("r2"))  # full: a release is not kept
    assert journal.append(settle(20, "c2"))  # full: a settle takes the place of a release
    assert not journal.append(settle(30, "c3"))  # full of settles: refused, the caller says so loudly
    assert [e.call_id for e in journal.pending()] == ["c1", "c2"]
    assert journal.pending_micros() == 30
    assert [e.call_id for e in read_pending(tmp_path)] == ["c1", "c2"]
    journal.close()


def test_a_file_of_done_entries_is_compacted(tmp_path: Path) -> None:
    journal = SettleJournal(tmp_path, max_entries=2)
    first = journal.path
    journal.append(settle(1, "stays"))
    for index in range(4):
        entry = settle(2, f"c{index}")
        journal.append(entry)
        journal.mark_done(entry.id)
    assert journal.path != first
    assert not first.exists()
    assert [e.call_id for e in read_pending(tmp_path)] == ["stays"]
    journal.close()


def test_each_store_has_its_own_directory_and_the_default_follows_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    one = journal_dir_for(tmp_path, "redis://:secret@host:6379/0", "costrouter")
    assert one != journal_dir_for(tmp_path, "redis://:secret@host:6379/0", "other")
    assert "secret" not in str(one)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_journal_dir() == str(tmp_path / "costrouter" / "journal")
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    assert default_journal_dir() == str(Path.home() / ".local" / "state" / "costrouter" / "journal")
    assert BudgetPolicy.model_validate({"store": {"journal_dir": None}}).store.journal_dir is None
