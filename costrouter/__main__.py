"""``python -m costrouter``: the ``costrouter`` command."""

from __future__ import annotations

from costrouter.cli import main

if __name__ == "__main__":
    main()
