"""Reports: cost over recorded spans, from a span file of either format.

- ``read``, ``scan``, ``lines``, ``otlp_decode``: a span file streamed in byte ranges over the
  usable CPUs (``cpus``), one span at a time, a bad line costing only itself;
- ``records``, ``rows``, ``times``: what a report reads of a span, and its rows;
- ``summary``, ``html``: the report as text, JSON, CSV or an HTML page.

Layer 5: imports the foundation and :mod:`costrouter.otel` (names and the span file's
format), never routing, budgets or a higher layer.
"""
