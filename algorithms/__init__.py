"""What runs on a training machine: the algorithms, and the runner that runs them.

- ``base``: the Algorithm and Predictor protocols; ``catalog``: algorithms by name or path;
- ``xgboost`` (and ``xgboost_params``, ``xgboost_dask``): the built-in algorithm;
- ``schema``: the feature schema that travels with a model and encodes raw records;
- ``run``: ``python -m algorithms.run <spec-url>``, the job runner every backend starts, and
  ``on_dask``, its Dask side.

It imports only ``core`` of Skiff's packages, and never Prefect.
"""
