"""How a flow run ends when it fails for a reason Skiff expected (a version not approved, a
source that cannot be fetched, a job that failed): Failed, with that reason as the state's
message (what the Prefect UI shows) and as the run's last log line (what ``prefect deployment
run --watch`` prints before "Failed"), and no traceback of the flow's. A caller that runs the
flow directly gets the error itself, as before."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.states import Failed

from core.errors import SkiffError

F = TypeVar("F", bound=Callable[..., Any])


def fails_with_reason(function: F) -> F:
    """Wrap a flow's function (under ``@flow``): an expected error becomes a Failed state
    whose message is the error's, holding the error (so a direct call raises it)."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SkiffError as exc:
            # Said in the run's log too: whoever watches the run (``prefect deployment run
            # --watch`` streams its logs) sees why, before "Failed".
            get_run_logger().error("%s", exc)
            return Failed(message=str(exc), data=exc)

    # Prefect reads the parameters' types from the signature, resolving names in the
    # function's module: this wrapper's module knows none of them, so give it them resolved.
    if "__signature__" not in function.__dict__:
        run.__signature__ = inspect.signature(function, eval_str=True)  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]
