"""Pricing: what a call may cost before it runs, and what it cost after.

- ``prices``: each deployment's price and the worst-case estimate over the groups a call can reach;
- ``cost``: the one function from usage and price to an exact cost, for every path;
- ``tokens``, ``media_tokens``, ``request_checks``: the prompt's token bound from a checked request;
- ``token_ratios``: learned provider-to-tokenizer ratios, by the rule of ``ratio_rule``;
  ``image_prices``: prices per image; ``service_tiers``: the tiers a request may be served at and
  the one a call is billed at;
- ``usage_bounds``: plausibility bounds on the usage and amounts a provider reports.

Layer 2: imports the foundation and :mod:`costrouter.config`, never a higher layer.
"""
