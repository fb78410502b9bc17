"""A preset's say in the exporters: endpoint and headers per signal, resource attributes.

Every ``OTEL_*`` variable wins: a set ``OTEL_EXPORTER_OTLP_[SIGNAL_]ENDPOINT`` leaves the
endpoint to the SDK, headers from ``OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS`` override the
preset's of the same name, and ``OTEL_RESOURCE_ATTRIBUTES`` overrides the preset's resource.

A preset's secret headers (``x-api-key``, ``authorization`` …) go only to the host the preset
names: when an ``OTEL_*`` endpoint sends a signal to another host (scheme, host and port), the
configuration is refused with a :class:`~costrouter.errors.ConfigError`, unless
``COSTROUTER_PRESET_HEADERS_TO_OTEL_ENDPOINT=true`` says the user means it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.util.re import parse_env_headers

from costrouter.config.redaction import is_secret_name, mask_url
from costrouter.errors import ConfigError
from costrouter.otel.backends.base import Backend, Signal

OPT_IN_VARIABLE = "COSTROUTER_PRESET_HEADERS_TO_OTEL_ENDPOINT"
"""The setting that lets a preset's secret headers go to an ``OTEL_*`` endpoint on another host."""


def _env_headers(signal: Signal, environ: Mapping[str, str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", f"OTEL_EXPORTER_OTLP_{signal.upper()}_HEADERS"):
        if environ.get(name):
            headers.update(parse_env_headers(environ[name], liberal=True))
    return headers


def _otel_endpoint(signal: Signal, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The ``OTEL_*`` variable that sets ``signal``'s endpoint and its value (the SDK's order)."""
    for name in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        value = environ.get(name)
        if value:
            return name, value
    return None


def _origin(url: str | None) -> tuple[str, str, int | None] | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    return parts.scheme, (parts.hostname or "").lower(), port


def _refuse_foreign_endpoint(
    preset: Backend, signal: Signal, headers: Mapping[str, str], overridden: tuple[str, str], named: str | None
) -> None:
    variable, url = overridden
    if _origin(url) is not None and _origin(url) == _origin(named):
        return
    secrets = sorted(name for name in headers if is_secret_name(name))
    if not secrets:
        return
    where = f"to {mask_url(named)} only" if named else f"only to the endpoint {preset.name}'s own variable names"
    base = f" (set {preset.base_env} to that host instead)" if preset.base_env else ""
    reason = (
        f"COSTROUTER_BACKEND={preset.name} sends {', '.join(secrets)} {where}, but {variable} points {signal} at "
        f"{mask_url(url)}{base}; unset {variable}, or set {OPT_IN_VARIABLE}=true to send those headers there"
    )
    raise ConfigError.single("environment", variable, reason)


def exporter_options(
    preset: Backend,
    signal: Signal,
    environ: Mapping[str, str],
    *,
    grpc: bool,
    headers_to_otel_endpoint: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for the OTLP exporter of ``signal``: ``endpoint`` and ``headers``.

    With gRPC the endpoint is the base URL (gRPC has no per-signal path). A ``ConfigError``
    when an ``OTEL_*`` endpoint on another host would receive the preset's secret headers and
    ``headers_to_otel_endpoint`` is off.
    """
    options: dict[str, Any] = {}
    overridden = _otel_endpoint(signal, environ)
    named = preset.endpoint(signal, environ)
    if overridden is None and named is not None:
        options["endpoint"] = named.rsplit(preset.paths[signal], 1)[0] if grpc else named
    headers = {key.lower(): value for key, value in preset.headers(environ).items()}
    if headers:
        own = {key.lower(): value for key, value in _env_headers(signal, environ).items()}
        if overridden is not None and not headers_to_otel_endpoint:
            preset_only = {key: value for key, value in headers.items() if key not in own}
            _refuse_foreign_endpoint(preset, signal, preset_only, overridden, named)
        merged = {**headers, **own}
        options["headers"] = tuple(merged.items()) if grpc else merged
    return options


def preset_resource(preset: Backend, environ: Mapping[str, str]) -> dict[str, str]:
    """The preset's resource attributes (``OTEL_RESOURCE_ATTRIBUTES`` is merged over them later)."""
    return preset.resource(environ)
