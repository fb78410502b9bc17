"""One epoch check in flight at a time: the others wait for its verdict, and what it covers."""

from __future__ import annotations

import threading
from pathlib import Path

from costrouter.budget.epoch_watch import EPOCH_CHECK_SECONDS, EpochWatch
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


def test_only_a_check_the_interval_alone_makes_due_runs_in_the_background(tmp_path: Path) -> None:
    watch = EpochWatch(tmp_path / "epoch")
    assert watch.claim_background(1, fail_closed=True) is None  # a first connection: checked on the path
    first = watch.claim(1, fail_closed=True)
    assert first is not None
    good = EpochState("e1", lost=False)
    watch.observe(good, 1)
    watch.finish(first[0], good)
    assert watch.claim_background(1, fail_closed=True) is None  # checked just now: nothing is due

    watch.checked_at -= EPOCH_CHECK_SECONDS  # the interval passed, nothing else changed
    check = watch.claim_background(1, fail_closed=True)
    assert check is not None
    assert watch.claim_background(1, fail_closed=True) is None  # one check out at a time
    assert watch.claim(1, fail_closed=True) is None  # a caller that saw nothing new does not wait for it
    assert watch.claim(2, fail_closed=True) == (check, False)  # one with a new connection does

    watch.observe(good, watch.check_connections)
    watch.finish(check, good)
    assert watch.claim(1, fail_closed=True) is None
    assert watch.claim_background(2, fail_closed=True) is None  # a new connection is checked on the path


def test_a_loss_a_background_check_found_is_checked_again_on_the_path_under_fail_closed(tmp_path: Path) -> None:
    watch = EpochWatch(tmp_path / "epoch")
    watch.observe(EpochState("e1", lost=False), 1)
    watch.checked_at -= EPOCH_CHECK_SECONDS
    check = watch.claim_background(1, fail_closed=True)
    assert check is not None
    lost = EpochState("e2", lost=True)
    assert watch.observe(lost, watch.check_connections)
    watch.finish(check, lost)
    assert watch.claim_background(1, fail_closed=True) is None
    again = watch.claim(1, fail_closed=True)
    assert again is not None
    assert again[1]  # the next caller runs a check of its own, and refuses on its verdict
    watch.finish(again[0], None)
    assert watch.claim(1, fail_closed=False) is None  # under warn a known loss is not checked again
