"""The ``costrouter`` command (``commands``; a module a command; ``output``) and its demo (``demo``, ``demo_rag``).

Layer 6, the top: may import every layer below. Commands import what they need when they
run, so ``costrouter --help`` and ``costrouter report`` start at once.
"""

from __future__ import annotations

from costrouter.cli.commands import app, main

__all__ = ["app", "main"]
