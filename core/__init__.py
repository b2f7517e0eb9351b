"""The shared base: what every layer uses, so that nothing above restates it.

- ``core.records``: the store's records (training jobs, model versions, endpoint configs) and
  the one way they are claimed, published and read;
- ``core.store``: the store itself, any fsspec URL, and its few I/O primitives;
- ``core.errors``: every error Skiff raises, in one tree (its map is the module's docstring);
- small helpers each written once: ``clock`` (timestamps), ``names`` (the name rule),
  ``plugins`` (name or dotted path → object), ``provenance`` (versions), ``runtime`` (this
  machine's state folder) and ``processes`` (starting and ending child processes).

It imports nothing else of Skiff's and nothing heavy (no pandas, xgboost, Dask or Prefect).
"""
