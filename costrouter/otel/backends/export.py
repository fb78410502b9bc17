"""A preset's say in the exporters: endpoint and headers per signal, resource attributes.

Every ``OTEL_*`` variable wins: a set ``OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT`` leaves the
endpoint to the SDK, headers from ``OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS`` override the
preset's of the same name, and ``OTEL_RESOURCE_ATTRIBUTES`` overrides the preset's resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.util.re import parse_env_headers

from costrouter.otel.backends.base import Backend, Signal


def _env_headers(signal: Signal, environ: Mapping[str, str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", f"OTEL_EXPORTER_OTLP_{signal.upper()}_HEADERS"):
        if environ.get(name):
            headers.update(parse_env_headers(environ[name], liberal=True))
    return headers


def exporter_options(preset: Backend, signal: Signal, environ: Mapping[str, str], *, grpc: bool) -> dict[str, Any]:
    """Keyword arguments for the OTLP exporter of ``signal``: ``endpoint`` and ``headers``.

    With gRPC the endpoint is the base URL (gRPC has no per-signal path).
    """
    options: dict[str, Any] = {}
    if not environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") and not environ.get(
        f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    ):
        endpoint = preset.endpoint(signal, environ)
        if endpoint is not None:
            options["endpoint"] = endpoint.rsplit(preset.paths[signal], 1)[0] if grpc else endpoint
    headers = preset.headers(environ)
    if headers:
        lowered = {key.lower(): value for key, value in headers.items()}
        lowered.update({key.lower(): value for key, value in _env_headers(signal, environ).items()})
        options["headers"] = tuple(lowered.items()) if grpc else lowered
    return options


def preset_resource(preset: Backend, environ: Mapping[str, str]) -> dict[str, str]:
    """The preset's resource attributes (``OTEL_RESOURCE_ATTRIBUTES`` is merged over them later)."""
    return preset.resource(environ)
