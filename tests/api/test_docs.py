"""The README's account of the API is the code's: every field CreateTrainingJob honours or
accepts is listed, and every operation the server has."""

from __future__ import annotations

from flows.api import hosting, packages, training, transforms, tuning
from flows.api.server import OPERATIONS
from tests.helpers import ROOT


def test_the_readme_lists_every_field_and_operation():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Use it from SageMaker code") :]
    fields = training.HONOURED | training.ACCEPTED
    fields |= hosting.MODEL_HONOURED | hosting.MODEL_ACCEPTED
    fields |= hosting.CONFIG_HONOURED | hosting.CONFIG_ACCEPTED
    fields |= packages.PACKAGE_HONOURED | packages.PACKAGE_ACCEPTED
    fields |= transforms.HONOURED | transforms.ACCEPTED
    fields |= {f for f in tuning.HONOURED | tuning.ACCEPTED if not f.startswith(tuning.DEFINITION)}
    missing = [f for f in fields if f"`{f}`" not in section]
    assert not missing, f"fields missing from the README: {sorted(missing)}"
    assert not [op for op in OPERATIONS if op not in section]
