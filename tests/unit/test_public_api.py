"""The public API is what ``costrouter.__all__`` says, and each name is documented."""

from __future__ import annotations

import subprocess
import sys

import costrouter


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert costrouter.__all__ == sorted(costrouter.__all__)
    for name in costrouter.__all__:
        assert getattr(costrouter, name) is not None
        assert name in dir(costrouter)


def test_every_public_costrouter_member_is_exported() -> None:
    own = {
        name
        for name in dir(costrouter)
        if not name.startswith("_") and getattr(getattr(costrouter, name), "__module__", "").startswith("costrouter")
    }
    assert own <= set(costrouter.__all__)


def test_every_public_name_has_a_docstring() -> None:
    for name in costrouter.__all__:
        member = getattr(costrouter, name)
        if callable(member):
            assert member.__doc__, name


def test_importing_costrouter_does_not_import_litellm() -> None:
    code = "import sys, costrouter, costrouter.cli; print('litellm' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_each_call_type_has_a_sync_and_an_async_module_level_function() -> None:
    for kind in ("completion", "embedding", "response", "text_completion", "messages"):
        assert f"route_{kind}" in costrouter.__all__
        assert f"aroute_{kind}" in costrouter.__all__
