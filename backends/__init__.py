"""Compute backends that run training jobs: where ``python -m algorithms.run`` runs.

- ``base``: the contract (``TrainingBackend``), the options every backend declares
  (``BackendOptions``) and the commands one may bring (``BackendCommand``);
- ``catalog``: the backends by name, with their light options models and commands;
- ``local`` (a child process), ``dask`` (``xgboost.dask`` on a Dask cluster; options in
  ``dask_options``) and ``ec2`` (instances launched for the job: ``ec2_options``,
  ``ec2_fleet``, ``ec2_userdata``, ``ec2_node`` on the instances, ``ec2_commands``).

``import backends`` loads nothing heavy: distributed and boto3 come with the backend chosen.
"""

from backends.base import TrainingBackend
from backends.catalog import BACKENDS, get_backend

__all__ = ["BACKENDS", "TrainingBackend", "get_backend"]
