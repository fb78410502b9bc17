"""The public API is what ``costrouter.__all__`` says, and each name is documented."""

from __future__ import annotations

import costrouter


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(costrouter) if not name.startswith("_")} - {"annotations", "os"}
    modules = {name for name in public if type(getattr(costrouter, name)).__name__ == "module"}
    assert sorted(costrouter.__all__, key=str.lower) == sorted(public - modules | {"__version__"}, key=str.lower)
    assert costrouter.__all__ == sorted(costrouter.__all__)


def test_every_public_name_has_a_docstring() -> None:
    for name in costrouter.__all__:
        member = getattr(costrouter, name)
        if callable(member):
            assert member.__doc__, name
