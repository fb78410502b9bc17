"""Backend presets: ``COSTROUTER_BACKEND`` names one, and costrouter sends what it reads.

Each module reads one backend's ingestion rules (cited in its docstring) and says where
its endpoint is, which signals it ingests, which headers and resource attributes it needs
(secrets from the environment only), and which span attributes it adds. Every ``OTEL_*``
variable still wins over a preset.
"""

from __future__ import annotations

from typing import Final

from costrouter.config.settings import BackendName
from costrouter.otel.backends.arthur import ARTHUR
from costrouter.otel.backends.base import NO_BACKEND, Backend, Signal
from costrouter.otel.backends.fiddler import FIDDLER
from costrouter.otel.backends.langsmith import LANGSMITH
from costrouter.otel.backends.others import COLLECTOR, DATADOG, LANGFUSE, PHOENIX
from costrouter.otel.backends.signoz import SIGNOZ

__all__ = ["BACKENDS", "NO_BACKEND", "Backend", "BackendName", "Signal", "backend"]

BACKENDS: Final[dict[str, Backend]] = {
    preset.name: preset for preset in (ARTHUR, LANGSMITH, FIDDLER, SIGNOZ, PHOENIX, LANGFUSE, DATADOG, COLLECTOR)
}
"""Every preset, by name."""


def backend(name: str | None) -> Backend:
    """The preset called ``name``; :data:`NO_BACKEND` for None."""
    if name is None:
        return NO_BACKEND
    return BACKENDS[name]
