"""Every install line of the README, the docs and costrouter's own messages names the distribution.

``costrouter`` on the public registry is someone else's project: a line that installs it would
install that. A line installs ``costrouter-litellm`` (with extras), a checkout (``.``, with extras)
or the wheel built from one; other tools it may install are named in :data:`OTHER_TOOLS`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = sorted((ROOT / "costrouter").rglob("*.py"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DIST = PROJECT["name"]
WHEEL = f"dist/{DIST.replace('-', '_')}-{PROJECT['version']}-py3-none-any.whl"
EXTRAS = set(PROJECT["optional-dependencies"])
OTHER_TOOLS = {"uv"}
"""What the docs install besides costrouter (``python3 -m pip install uv``)."""
INSTALL = re.compile(r"\b(?:pip install|uv pip install|uv add)((?:[ \t]+[^\s`]+)+)")


def install_targets(text: str) -> list[str]:
    """The arguments of every install command in ``text`` (options left out, quotes removed)."""
    targets: list[str] = []
    for match in INSTALL.finditer(text):
        for word in match.group(1).split():
            if word in {"&&", "#", "|", ";"}:
                break
            target = word.strip("'\"")
            if target and not target.startswith("-"):
                targets.append(target)
    return targets


def check_target(target: str) -> None:
    name, _, extras = target.partition("[")
    if target in OTHER_TOOLS or target == WHEEL:
        return
    assert name in {DIST, "."}, f"{target!r} does not name {DIST}"
    for extra in filter(None, extras.rstrip("]").split(",")):
        if not (extra.startswith("{") and extra.endswith("}")):  # an f-string's placeholder in a message
            assert extra in EXTRAS, f"{target!r}: no extra {extra!r}"


def test_the_distribution_is_not_the_registry_s_other_costrouter() -> None:
    assert DIST == "costrouter-litellm"


@pytest.mark.parametrize("path", [*PAGES, *SOURCES], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_install_line_names_the_distribution(path: Path) -> None:
    for target in install_targets(path.read_text()):
        check_target(target)


def test_the_install_lines_are_found() -> None:
    readme = install_targets((ROOT / "README.md").read_text())
    assert {"uv", ".", WHEEL, f"{DIST}[tools,anthropic]", ".[tools,anthropic]"} <= set(readme)
    assert install_targets("run `pip install costrouter` here") == ["costrouter"]
    with pytest.raises(AssertionError, match="does not name"):
        check_target("costrouter[grpc]")
    with pytest.raises(AssertionError, match="no extra"):
        check_target(f"{DIST}[no-such-extra]")
