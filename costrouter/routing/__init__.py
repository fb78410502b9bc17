"""Routing: the routed call itself, from context to settled cost.

- ``router``: :class:`CostRouter`, its ``route_*`` methods and their async twins;
- ``calls``: the call flow, a generator that decides and yields only I/O (:mod:`costrouter.ops`);
  ``routed_call``: the state of one call while it runs; ``answers``: an answer read, bounded and priced;
- ``streaming``, ``interruptions``: streams and cancelled calls finishing their routed call;
- ``needs``: the extras a call needs on the installed LiteLLM, checked before its hold;
- ``operations``: one description per kind of call; ``building``: the LiteLLM ``Router``
  from the config; ``loop_thread``: a private loop for sync twins; ``default``: the module-level
  ``costrouter.route_*`` functions.

Layer 5: imports every lower layer (foundation, config, pricing, otel, budget); beside
:mod:`costrouter.report`, :mod:`costrouter.prices_push` and :mod:`costrouter.testing`, which it
does not import.
"""
