"""Hyperparameter tuning jobs: trials that are training jobs on any backend, chosen by
Optuna on the validation split. ``jobs`` (create, run), ``tuner`` (the trials' loop),
``strategies``, ``ranges``, ``pipeline`` (``--tune``), ``flow`` (Prefect), ``report`` (the UI)."""
