"""costrouter.forks: every registered object renews itself in a real forked child, journals first."""

from __future__ import annotations

import os

from costrouter import forks
from tests.workers.forked_calls import fork

ORDER: list[str] = []


class Item:
    def __init__(self, name: str, *, fails: bool = False) -> None:
        self.name = name
        self.fails = fails

    def renew_after_fork(self) -> None:
        ORDER.append(self.name)
        if self.fails:
            raise RuntimeError(f"{self.name} cannot renew")


def _in_child(check: object) -> int:
    pid = fork()
    if pid == 0:
        code = 2
        try:
            code = 0 if check() else 1  # type: ignore[operator]
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_items_renew_in_the_child_only_first_ones_first_and_a_failure_stops_no_other() -> None:
    ORDER.clear()
    later, failing, first = Item("later"), Item("failing", fails=True), Item("first")
    forks.renew_in_child(later)
    forks.renew_in_child(failing)
    forks.renew_in_child(first, first=True)

    def renewed_in_order() -> bool:
        return ORDER[0] == "first" and sorted(ORDER[1:]) == ["failing", "later"]

    assert _in_child(renewed_in_order) == 0
    assert ORDER == [], "the parent renews nothing"
    del later, failing, first


def test_an_item_collected_is_not_renewed() -> None:
    ORDER.clear()
    forks.renew_in_child(Item("gone"))  # held by nobody: the weak set lets it go
    assert _in_child(lambda: "gone" not in ORDER) == 0
