"""costrouter inside the LiteLLM proxy: a callback plugin (``plugin``, ``payer``, ``refusal``).

Layer 6, beside ``cli``: may import every layer below.

Loaded the proxy's own way, by dotted path::

    litellm_settings:
      callbacks: ["costrouter.proxy.handler"]

``handler`` is the :class:`CostRouterProxyHandler` the proxy calls; it needs the ``proxy``
extra (``pip install 'costrouter-litellm[proxy]'``). See ``docs/proxy.md``.
"""

from __future__ import annotations

from costrouter.proxy.plugin import CostRouterProxyHandler

__all__ = ["CostRouterProxyHandler", "handler"]

handler = CostRouterProxyHandler()
"""The instance ``litellm_settings.callbacks: ["costrouter.proxy.handler"]`` loads."""
