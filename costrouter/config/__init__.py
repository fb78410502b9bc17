"""Configuration: every file and variable a user writes, read into checked models.

- ``groups``: the model-group YAML (deployments, prices, fallbacks, ``router_settings``);
- ``budgets``, ``budget_ref``, ``windows``, ``alerts``: the budget policy YAML;
- ``settings``: ``COSTROUTER_*`` and ``OTEL_*`` from the environment;
- ``reader``: YAML with a line number on every problem; ``price_fields`` and ``image_key``: the
  price fields a deployment may carry; ``redaction``: secrets kept out of messages;
  ``reachability``: which endpoints a process can reach; ``modes``: the kinds of call a deployment
  may serve; ``proxy_format``: a LiteLLM proxy ``config.yaml`` read into the groups' layout;
  ``outbound``: one bounded HTTP request to a URL the configuration names (alert sinks and price
  pushes share it, so it sits in the lowest layer both may import).

Layer 1 of costrouter: imports only the foundation modules at the top of the package
(``errors``, ``money``, ``context``, ``ops``, ``_version``), never a higher layer.
"""
