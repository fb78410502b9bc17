"""The unversioned 0.2 Redis layout as a router of the current one sees it: refuse to start beside it.

A store whose 0.2 epoch key (``{prefix:epoch}``) is live still has 0.2 processes counting in
micro-dollars under keys this version does not read; counting beside them would split one
budget's spend in two books. A router of the current layout checks that key at its first epoch
check and raises :class:`~costrouter.errors.StoreLayoutError` (naming the store, the key and
the command) until ``costrouter budget migrate`` (:mod:`costrouter.budget.migrate`) marks it
migrated.
"""

from __future__ import annotations

from typing import Final

from costrouter.config.budget_ref import KEY_LAYOUT_VERSION
from costrouter.config.redaction import mask_url
from costrouter.errors import StoreLayoutError

MIGRATING: Final = "migrating:"
"""The 0.2 epoch while a migration runs (0.2 processes refuse; new ones wait for its end)."""
MIGRATED: Final = "migrated:"
"""The 0.2 epoch once a migration finished (0.2 processes refuse; new ones start)."""


def legacy_epoch_keys(prefix: str) -> list[str]:
    """The 0.2 layout's epoch key, lost flag and accepted epoch."""
    base = "{" + f"{prefix}:epoch" + "}"
    return [base, f"{base}:lost", f"{base}:accepted"]


def layout_problem(value: str | None, accepted: str | None, url: str, prefix: str) -> StoreLayoutError | None:
    """The error for the 0.2 epoch ``value`` (and its accepted epoch) on the store at ``url``; ``None``: fine.

    Fine: no 0.2 epoch, or one a finished migration marked that no 0.2 process accepted since
    (0.2's ``accept-loss`` on a migrated store would let 0.2 processes count there again).
    """
    if value is None or (value.startswith(MIGRATED) and accepted != value):
        return None
    shown = mask_url(url)
    if value.startswith(MIGRATED):
        return StoreLayoutError(
            f"the store at {shown}: costrouter 0.2's `budget accept-loss` was run after the migration of key prefix "
            f"{prefix!r} ({legacy_epoch_keys(prefix)[2]} is {value!r}), so 0.2 processes may count there again; "
            f"stop them, then run `costrouter budget migrate --budgets <policy> --redis {shown}` again"
        )
    if value.startswith(MIGRATING):
        what = (
            f"the store at {shown}: a migration of costrouter 0.2's key layout under key prefix {prefix!r} "
            f"did not finish (its epoch key {legacy_epoch_keys(prefix)[0]} is {value!r})"
        )
    else:
        what = (
            f"the store at {shown} holds costrouter 0.2's key layout under key prefix {prefix!r} (its epoch key "
            f"{legacy_epoch_keys(prefix)[0]} is live): this version reads layout {KEY_LAYOUT_VERSION} only, "
            "in another money unit, and would count beside it"
        )
    return StoreLayoutError(
        f"{what}; run `costrouter budget migrate --budgets <policy> --redis {shown}` to carry it over "
        "(0.2 processes of this store refuse their calls from then on)"
    )
