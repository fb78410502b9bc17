"""``costrouter.settings``, the documented path of :class:`Settings`.

Its home is :mod:`costrouter.config.settings`; this path stays importable.
"""

from __future__ import annotations

from costrouter.config.settings import Settings

__all__ = ["Settings"]
