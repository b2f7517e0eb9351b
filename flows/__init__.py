"""The top layer: the Prefect flows and what people run.

- ``bank_marketing`` (the pipeline: ``python -m flows.bank_marketing``) and ``deploy_model``;
  their tasks in ``steps``, each calling plain functions (``data``, ``bank``, ``datasets``,
  ``training``, ``registration``, ``approval``, ``evaluation``, ``report``); ``caching``
  decides what a rerun skips;
- ``config`` (the pipeline's options, built with the backends' own) and ``flags`` (flags
  from any options model); ``summary`` (what a run prints);
- ``cli`` and ``commands/``: the ``skiff`` command;
- ``api/``: ``skiff api``, SageMaker's API over the same operations and records.

Only this package imports Prefect.
"""

import os

# Prefect reads its settings when first imported, so the defaults must be in place before any
# module here imports it. They make the embedded (ephemeral) server start reliably on a cold
# 2-core machine (its 20 s default timed out there) and keep it quiet offline (no telemetry).
# A user's own settings win: these are only defaults.
_PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "flows,backends,algorithms,serving,core",
    # Our loggers also run outside flow runs (the skiff command, libraries): no warning then.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}
for _name, _value in _PREFECT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
