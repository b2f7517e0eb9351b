"""Preloaded by the Dask workers the dask backend creates (``LocalCluster(preload=...)``).

Importing the training stack here happens while the job's runner process starts, instead of
inside the job's first task. For workers you start yourself: ``dask worker --preload
algorithms.dask_worker_preload ...`` does the same.
"""

import dask.dataframe  # noqa: F401
import pyarrow.parquet  # noqa: F401
import xgboost.dask  # noqa: F401

import algorithms.on_a_worker  # noqa: F401 - a job placed on one worker runs it
