"""Configuration: every file and variable a user writes, read into checked models.

- ``groups``: the model-group YAML (deployments, prices, fallbacks, ``router_settings``);
- ``budgets``, ``budget_ref``, ``windows``, ``alerts``: the budget policy YAML;
- ``settings``: ``COSTROUTER_*`` and ``OTEL_*`` from the environment;
- ``reader``: YAML with a line number on every problem; ``price_fields`` and ``image_key``: the
  price fields a deployment may carry; ``redaction``: secrets kept out of messages;
  ``reachability``: which endpoints a process can reach.

Layer 1 of costrouter: imports only the foundation modules at the top of the package
(``errors``, ``money``, ``context``, ``ops``, ``_version``), never a higher layer.
"""
