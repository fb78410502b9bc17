"""The settle journal's cheap paths: what the replay may carry, lines as ``json`` writes them, done marks at once."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costrouter.budget.journal import PendingSettle, SettleJournal, done_line, new_entry, read_pending
from costrouter.config.budget_ref import BudgetRef
from costrouter.config.windows import parse_window

BUDGET = BudgetRef("session-total", "session", 's-"1\u00e9', parse_window("total"), 1_000_000, (0.5,), "reject", None)
OTHER = BudgetRef("team-30d", "team", "t", parse_window("30d"), 7, (), "downgrade", "cheap")


def leased(call_id: str, owner: str) -> PendingSettle:
    return replace(new_entry(BUDGET, call_id, 5, "settle"), lease=owner, seq=3, window="w1")


def test_the_own_lease_entries_are_not_replayable(tmp_path: Path) -> None:
    journal = SettleJournal(tmp_path)
    journal.append(leased("before", "me"), sync=False)  # appended before the owner is named: counted then
    journal.set_own_lease("me")
    mine = leased("c1", "me")
    dead = leased("c2", "a-dead-process")
    plain = new_entry(BUDGET, "c3", 9, "settle")
    for entry in (mine, dead, plain):
        assert journal.append(entry, sync=False)
    assert (journal.pending_count, journal.replayable_count) == (4, 2)

    journal.mark_all_done([mine.id, dead.id, "never-journaled"])
    assert (journal.pending_count, journal.replayable_count) == (2, 1)
    journal.mark_done(plain.id)
    assert (journal.pending_count, journal.replayable_count) == (1, 0)


def test_a_full_journal_evicting_a_release_keeps_the_count(tmp_path: Path) -> None:
    journal = SettleJournal(tmp_path, max_entries=2)
    journal.set_own_lease("me")
    journal.append(new_entry(BUDGET, "r1", 0, "release"))
    journal.append(leased("c1", "me"), sync=False)
    assert journal.append(leased("c2", "me"), sync=False)  # drops the release to keep a settle
    assert (journal.pending_count, journal.replayable_count) == (2, 0)
    journal.close()
    assert sorted(entry.call_id for entry in read_pending(tmp_path)) == ["c1", "c2"]


def test_lines_are_what_json_writes(tmp_path: Path) -> None:
    journal = SettleJournal(tmp_path)
    entries = [
        leased("c\u2028", "me"),
        new_entry(BUDGET, "c2", 0, "release"),
        new_entry(OTHER, "c3", 11, "settle"),
        new_entry(BUDGET, "c4", 12, "settle"),  # the budget's part from the cache
    ]
    for entry in entries:
        journal.append(entry, sync=False)
    journal.mark_all_done([entries[1].id, entries[2].id])
    lines = journal.path.read_bytes().decode().splitlines()
    expected = [json.dumps(entry.to_json(), separators=(",", ":")) for entry in entries]
    expected += [json.dumps({"kind": "done", "id": entry.id}, separators=(",", ":")) for entry in entries[1:3]]
    assert lines == expected
    assert done_line('a"b\u00e9') == json.dumps({"kind": "done", "id": 'a"b\u00e9'}, separators=(",", ":"))
    journal.close()
    assert read_pending(tmp_path) == sorted([entries[0], entries[3]], key=lambda entry: entry.at)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    call_id=st.text(max_size=40),
    lease=st.none() | st.text(max_size=20),
    window=st.text(max_size=20),
    seq=st.integers(min_value=0, max_value=2**63),
    amount=st.integers(min_value=0, max_value=2**63),
    at=st.floats(allow_nan=True, allow_infinity=True),
    state=st.sampled_from(["settle", "release"]),
)
def test_a_built_line_is_what_json_writes_for_any_fields(
    tmp_path: Path, call_id: str, lease: str | None, window: str, seq: int, amount: int, at: float, state: str
) -> None:
    journal = SettleJournal(tmp_path)
    try:
        entry = PendingSettle(new_entry(BUDGET, call_id, 0, "settle").id, call_id, BUDGET, amount, state, at)  # type: ignore[arg-type]
        entry = replace(entry, lease=lease, seq=seq, window=window) if lease is not None else entry
        assert journal._line(entry) == json.dumps(entry.to_json(), separators=(",", ":"))
    finally:
        journal.close()


def test_the_tracked_length_follows_the_file(tmp_path: Path) -> None:
    journal = SettleJournal(tmp_path, max_entries=4)
    entries = [leased(f"c{index}", "me") for index in range(6)]

    def length_is_the_files() -> None:
        assert journal._size == journal.path.stat().st_size

    first = journal.path
    for entry in entries[:3]:
        journal.append(entry, sync=False)
        length_is_the_files()
    journal.mark_all_done([entries[0].id])
    length_is_the_files()
    for entry in entries[3:]:  # past max_entries * 2 lines: compacted into a new file
        journal.append(entry, sync=False)
        journal.mark_all_done([entry.id])
        length_is_the_files()
    assert journal.path != first
    journal.mark_all_done([entry.id for entry in entries])  # nothing pending: cut to nothing
    length_is_the_files()
    assert journal._size == 0
    journal.append(entries[0], sync=False)
    length_is_the_files()
    journal.close()
