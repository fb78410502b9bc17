"""Run costrouter 0.2 (commit 2a7423a, the unversioned key layout in micro-dollars) in a subprocess.

The upgrade tests need the real old code against the same Redis, not a copy of its keys:
:func:`legacy_tree` unpacks the 0.2 package (and the test helpers its router config needs) from
this repository's history with ``git archive``, and :func:`run_legacy` runs a script there with
its own ``PYTHONPATH`` (ahead of the installed, current costrouter), returning its JSON answer.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Final

LEGACY_COMMIT: Final = "2a7423a"
"""The last commit of the unversioned (0.2) key layout."""

REPO: Final = Path(__file__).resolve().parents[2]


def legacy_tree(target: Path) -> Path:
    """Unpack 0.2's ``costrouter`` package and ``tests/routing.py`` into ``target``; returns it."""
    paths = ["costrouter", "tests/__init__.py", "tests/routing.py"]
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", LEGACY_COMMIT, *paths],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        message = (
            f"the upgrade test needs commit {LEGACY_COMMIT} (costrouter 0.2's layout) in {REPO}'s history "
            f"(a full clone, not a shallow one): {archive.stderr.decode(errors='replace').strip()}"
        )
        raise RuntimeError(message)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def run_legacy(tree: Path, script: str, *args: str) -> Any:
    """Run ``script`` (Python source) with 0.2's costrouter first on the path; its stdout's last line as JSON."""
    env = {**os.environ, "PYTHONPATH": str(tree), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        message = f"the 0.2 process failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        raise AssertionError(message)
    return json.loads(done.stdout.strip().splitlines()[-1])
