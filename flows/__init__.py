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

import logging
import os
import sys

# Prefect reads its settings when first imported, so the defaults must be in place before any
# module here imports it. They make the embedded (ephemeral) server start reliably on a cold
# 2-core machine (its 20 s default timed out there) and keep it quiet offline (no telemetry).
# A user's own settings win: these are only defaults.
OUR_LOGGERS = ("flows", "backends", "algorithms", "serving", "core")
_PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_EXTRA_LOGGERS": ",".join(OUR_LOGGERS),
    # Our loggers also run outside flow runs (the skiff command, libraries): no warning then.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}
for _name, _value in _PREFECT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)


def _send_logs_to_runs() -> None:
    """Skiff's INFO lines (training rounds, deploy steps) go to the flow run's log, however
    the process started. Prefect copies its run-log handler onto the extra loggers when it is
    first imported, so the setting above covers a process that imports Skiff first (the
    command line); a process Prefect started (a worker's flow run) imported Prefect before
    Skiff: there the handlers are copied here. Either way the loggers need a level of their
    own: the root logger's is WARNING in Prefect's configuration."""
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        if "prefect.logging.configuration" in sys.modules:
            for handler in logging.getLogger("prefect.extra").handlers:
                if handler not in logger.handlers:
                    logger.addHandler(handler)


_send_logs_to_runs()
