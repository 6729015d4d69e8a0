"""Language models: LiteLLM providers of our own and what every call is worth.

``custom.py`` registers the custom providers (``offline/``, ``mlx/``); ``providers.py`` checks a
model entry; ``tracked.py``, ``ledger.py``, ``usage.py`` and ``pricing.py`` count calls, tokens and
dollars; ``faults.py`` injects provider faults; ``hardware.py`` tags what a model ran on.
"""
