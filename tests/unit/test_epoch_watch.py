"""One epoch check in flight at a time: the others wait for its verdict, and what it covers."""

from __future__ import annotations

import threading
from pathlib import Path

from costrouter.budget.epoch_watch import EpochWatch
from costrouter.budget.store import EpochState


def test_callers_meeting_a_check_in_flight_get_that_check_to_wait_for(tmp_path: Path) -> None:
    watch = EpochWatch(tmp_path / "epoch")
    claimed = watch.claim(1, fail_closed=True)
    assert claimed is not None
    check, mine = claimed
    assert mine
    for _ in range(3):  # before the fix these callers were told "not due" and went on
        assert watch.claim(2, fail_closed=True) == (check, False)
    assert not check.cancel()  # a cancelled waiter cannot cancel it for the others

    verdicts: list[EpochState | None] = []
    waiter = threading.Thread(target=lambda: verdicts.append(check.result()))
    waiter.start()
    lost = EpochState("new-epoch", lost=True)
    watch.observe(lost, watch.check_connections)
    watch.finish(check, lost)
    waiter.join()
    assert verdicts == [lost]


def test_a_good_verdict_covers_only_the_connections_open_when_the_check_began(tmp_path: Path) -> None:
    watch = EpochWatch(tmp_path / "epoch")
    claimed = watch.claim(1, fail_closed=True)
    assert claimed is not None
    check, _ = claimed
    good = EpochState("e1", lost=False)
    watch.observe(good, watch.check_connections)
    watch.finish(check, good)
    assert watch.claim(1, fail_closed=True) is None  # nothing new since: not due
    again = watch.claim(2, fail_closed=True)  # a connection opened while the check was out
    assert again is not None
    assert again[1]
    assert (tmp_path / "epoch").read_text().strip() == "e1"


def test_a_check_without_an_answer_frees_the_next_one(tmp_path: Path) -> None:
    watch = EpochWatch(None)
    claimed = watch.claim(1, fail_closed=False)
    assert claimed is not None
    watch.finish(claimed[0], None)
    assert claimed[0].result() is None
    nxt = watch.claim(1, fail_closed=False)
    assert nxt is not None
    assert nxt[1]
