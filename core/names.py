"""The one rule for the names people give things (jobs, model groups, endpoints, variants).

It is SageMaker's rule, and it keeps names plain path parts: no name can reach outside its
folder in the store or in the runtime folder.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

NAME_RULE = "1-63 letters, digits or hyphens, starting and ending with a letter or digit"
_NAME = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$")


def check_name(name: str, what: str, error: type[Exception] = ValueError) -> str:
    """``name`` if it follows the rule; else ``error`` saying what the ``what`` name must be."""
    if not _NAME.match(name):
        raise error(f"{what} name {name!r} must be {NAME_RULE}")
    return name


def _named(what: str) -> AfterValidator:
    return AfterValidator(lambda name: check_name(name, what))


# Pydantic field types that enforce the rule, with the thing's name in the message.
JobName = Annotated[str, _named("job")]
VariantName = Annotated[str, _named("variant")]
ModelGroupName = Annotated[str, _named("model group")]
EndpointName = Annotated[str, _named("endpoint")]
