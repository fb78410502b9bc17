"""The settle journal on disk: crash safety, adoption of dead processes' files, the bound."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from costrouter.budget import BudgetPolicy
from costrouter.budget.journal import (
    PendingSettle,
    SettleJournal,
    journal_dir_for,
    journal_trouble,
    new_entry,
    read_faults,
    read_pending,
)
from costrouter.budget.journal_lines import MAX_LINE_BYTES
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.budgets import default_journal_dir
from costrouter.config.windows import parse_window
from costrouter.money import MAX_CALL_UNITS

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
    assert journal.pending_units() == 30
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


# ---- hostile files: one bad line is skipped and named, never fatal ----------------------------
def dead_file(directory: Path, *lines: bytes) -> Path:
    """A journal file as a dead process would leave it (nobody holds its lock)."""
    path = directory / "journal-999999-deadbeef0000.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def line_of(entry: PendingSettle) -> bytes:
    return json.dumps(entry.to_json(), separators=(",", ":")).encode() + b"\n"


def with_amount(amount: object) -> bytes:
    return json.dumps({**settle(1, "bad").to_json(), "amount_units": amount}).encode() + b"\n"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"[" * 60_000 + b"\n", "nested deeper than 8 levels"),  # json.loads: RecursionError
        (b'{"kind": "pending", "x": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}\n', "longer than 65536 bytes"),
        (with_amount(10**30), "amount_units 1000000000000000000000000000000 is outside 0..10000000000"),
        (with_amount(1e30), "amount_units must be an integer, not 1e+30"),
        (with_amount(-5), "amount_units -5 is outside"),
        (with_amount("5"), "amount_units must be an integer, not '5'"),
        (with_amount(MAX_CALL_UNITS + 1), "is outside 0..10000000000"),
        (json.dumps({**settle(1).to_json(), "at": float("nan")}).encode() + b"\n", "NaN is not a number"),
        (b'{"kind": "pending", "id": 5}\n', "no field 'budget'"),
        (b'{"kind": "done", "id": {"a": 1}}\n', "id must be a string"),
        (b'"just a string"\n', "not a JSON object but str"),
        (b"\xff\xfe garbage\n", "not JSON"),
    ],
    ids=[
        "deep",
        "long",
        "huge-amount",
        "float-amount",
        "negative",
        "text-amount",
        "past-cap",
        "nan",
        "no-budget",
        "id-object",
        "not-object",
        "not-utf8",
    ],
)
def test_a_bad_line_of_a_dead_file_is_skipped_and_named(
    tmp_path: Path, bad: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    before, after = settle(10, "before"), settle(20, "after")
    path = dead_file(tmp_path, line_of(before), bad, line_of(after))
    with caplog.at_level(logging.ERROR, logger="costrouter"):
        assert {e.call_id for e in read_pending(tmp_path)} == {"before", "after"}
        journal = SettleJournal(tmp_path)
        assert journal.adopt() == 2  # what a router build does: the good entries, not a crash
    assert {e.call_id for e in journal.pending()} == {"before", "after"}
    journal.close()
    named = [r.getMessage() for r in caplog.records if f"line 2 of settle journal {path}" in r.getMessage()]
    assert len(named) == 2  # once by the reader, once by the adoption
    assert reason in named[0]


def test_the_largest_amount_one_call_is_charged_is_read(tmp_path: Path) -> None:
    dead_file(tmp_path, line_of(settle(MAX_CALL_UNITS, "cap")))
    assert [e.amount_units for e in read_pending(tmp_path)] == [MAX_CALL_UNITS]


def test_a_torn_tail_is_never_an_entry_even_when_it_parses(tmp_path: Path) -> None:
    whole = line_of(settle(10, "whole"))
    dead_file(tmp_path, whole, line_of(settle(20, "cut before its newline"))[:-1])
    assert [e.call_id for e in read_pending(tmp_path)] == ["whole"]


def test_a_torn_line_that_could_not_be_cut_back_is_ended_before_the_next_entry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = SettleJournal(tmp_path)
    with journal.path.open("ab") as file:  # what a cut-short write leaves when the cut back failed too
        file.write(line_of(settle(20, "cut"))[:-1])
    journal._torn = True
    assert journal.append(settle(10, "next"))
    with caplog.at_level(logging.ERROR, logger="costrouter"):
        assert [e.call_id for e in read_pending(tmp_path)] == ["next"]
    assert "line 1 of settle journal" in caplog.text
    journal.close()


# ---- a journal that cannot grow: all or nothing -----------------------------------------------
GROW_UNTIL_REFUSED = """
import json, resource, sys
from costrouter.budget.journal import SettleJournal, read_faults, read_pending
from tests.unit.test_journal import settle

journal = SettleJournal(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
answers, sizes = [], []
for index in range(4):
    answers.append(journal.append(settle(index + 1, f"c{index}")))
    sizes.append(journal.path.stat().st_size)
print(json.dumps({
    "answers": answers,
    "sizes": sizes,
    "kept": [e.call_id for e in read_pending(sys.argv[1])],
    "fault": journal.fault,
    "faults": [[f.path.name, f.reason] for f in read_faults(sys.argv[1])],
    "file": journal.path.name,
}))
"""


def grow_until_refused(directory: Path, limit: int) -> dict[str, object]:
    """Append four entries in a child process whose files may not pass ``limit`` bytes (RLIMIT_FSIZE)."""
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": str(root)}
    child = subprocess.run(
        [sys.executable, "-c", GROW_UNTIL_REFUSED, str(directory), str(limit)],
        capture_output=True,
        env=environment,
        check=True,
    )
    result: dict[str, object] = json.loads(child.stdout)
    return result


@pytest.mark.parametrize("room_for", [0, 2])
def test_a_write_the_file_size_limit_cuts_short_is_not_written(tmp_path: Path, room_for: int) -> None:
    limit = room_for * len(line_of(settle(1, "c0"))) + 100  # the next entry fits about 100 of its bytes
    result = grow_until_refused(tmp_path, limit)
    assert result["answers"] == [True] * room_for + [False] * (4 - room_for)
    sizes = cast("list[int]", result["sizes"])
    assert sizes[room_for:] == [sizes[room_for - 1] if room_for else 0] * (4 - room_for)  # cut back off
    assert result["kept"] == [f"c{index}" for index in range(room_for)]
    assert result["fault"] == "File too large"
    assert result["faults"] == [[result["file"], "File too large"]]


def test_a_fault_marker_goes_with_its_file(tmp_path: Path) -> None:
    grow_until_refused(tmp_path, 100)  # the child died with its file: a dead process's, with a marker
    assert len(read_faults(tmp_path)) == 1
    journal = SettleJournal(tmp_path)
    journal.adopt()
    assert read_faults(tmp_path) == []
    journal.close()


# Exactly as costrouter before the unit change (2a7423a) wrote them: micro-dollars, no line version.
OLD_SETTLE = (
    b'{"kind":"pending","id":"bbfb2221d90044e8b674363ff52aa871","call_id":"call-1","state":"settle",'
    b'"amount_micros":428,"at":1796529075.9267697,"budget":{"name":"session-total","scope":"session",'
    b'"scope_id":"s-1","window":"total","limit_micros":1000000,"alert_at":[0.5],"on_exceeded":"reject",'
    b'"downgrade_to":null}}\n'
)
OLD_LEASE_SETTLE = (
    b'{"lease":"owner-1","seq":7,"window":"w","kind":"pending","id":"9d522d39fad145cfa794b468f70a0184",'
    b'"call_id":"call-2","state":"settle","amount_micros":1500,"at":1796529075.9268816,"budget":{"name":'
    b'"session-total","scope":"session","scope_id":"s-1","window":"total","limit_micros":1000000,'
    b'"alert_at":[0.5],"on_exceeded":"reject","downgrade_to":null}}\n'
)


def test_a_line_written_in_micro_dollars_is_read_in_units(tmp_path: Path) -> None:
    (tmp_path / "journal-999999-0123456789ab.jsonl").write_bytes(OLD_SETTLE + OLD_LEASE_SETTLE)
    first, second = sorted(read_pending(tmp_path), key=lambda e: e.call_id)
    assert (first.amount_units, first.budget.limit_units) == (428_000, 1_000_000_000)
    assert (second.amount_units, second.lease, second.seq) == (1_500_000, "owner-1", 7)
    assert first.to_json()["v"] == 2
    assert first.to_json()["amount_units"] == 428_000  # rewritten in units when adopted


def test_a_line_of_an_unknown_version_is_skipped_and_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "journal-999999-0123456789ab.jsonl"
    path.write_bytes(json.dumps({**settle(5).to_json(), "v": 3}).encode() + b"\n")
    with caplog.at_level(logging.ERROR, logger="costrouter"):
        assert read_pending(tmp_path) == []
    assert "unknown line version '3'" in caplog.text


def test_a_refusal_says_whether_the_journal_is_full_or_closed(tmp_path: Path) -> None:
    journal = SettleJournal(tmp_path, max_entries=1)
    assert journal.append(settle(10, "c1"))
    assert not journal.append(settle(20, "c2"))
    assert journal_trouble(journal) == "is full (1 entries wait)"
    journal.close()
    assert journal.closed
    for leftover in tmp_path.iterdir():
        leftover.unlink()
    tmp_path.rmdir()  # nowhere left to write
    assert not journal.append(settle(30, "c3"))
    assert journal_trouble(journal) == "cannot grow (No such file or directory)"


def test_an_entry_after_close_is_left_in_a_file_of_its_own_for_the_next_start(tmp_path: Path) -> None:
    journal = SettleJournal(tmp_path)
    assert journal.append(settle(10, "before"))
    journal.close()  # the router shut down with one settle waiting
    assert journal.append(settle(30, "after"))  # a call that outlived the shutdown, its store failing
    assert journal.append(release("after-release"))
    files = sorted(tmp_path.glob("journal-*.jsonl"))
    assert len(files) == 3  # the closed file and one file a late entry
    assert sorted((e.call_id, e.amount_units) for e in read_pending(tmp_path)) == [
        ("after", 30),
        ("after-release", 0),
        ("before", 10),
    ]
    later = SettleJournal(tmp_path)  # the next start adopts every file: none is locked
    assert later.adopt() == 3
    assert sorted(e.call_id for e in later.pending()) == ["after", "after-release", "before"]
    assert [p.name for p in tmp_path.glob("journal-*.jsonl")] == [later.path.name]
    later.close()


def test_a_closed_journal_says_why_it_refused_when_it_cannot_leave_the_entry(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = SettleJournal(directory)
    journal.close()
    directory.rmdir()  # the closed journal left nothing; now there is nowhere to leave a file
    journal.fault = None
    assert not journal.append(settle(30, "c3"))
    assert journal.fault is not None
    journal.fault = None
    assert journal_trouble(journal) == "is closed (the router was shut down) and could not leave it for the next start"
