"""OpenTelemetry: the span, the metrics and where they go.

- ``semconv``: every span, attribute and metric name, in one place;
- ``telemetry``, ``outcome``, ``attempts``, ``cost_attributes``, ``models``: one routed call written
  as a span with attempt children and metric points;
- ``metrics``: instruments summed in process; ``exporters``, ``span_queue``, ``log_export``:
  providers, processors and exporters from settings; ``otlp_json``, ``span_file``: the span file's
  format; ``backends``: one preset per observability backend.

Layer 3: imports the foundation, :mod:`costrouter.config` and :mod:`costrouter.pricing`,
never a higher layer.
"""
