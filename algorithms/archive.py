"""SageMaker's model artifact: ``model.tar.gz`` holding ``xgboost-model``, as its built-in
XGBoost writes it, so that SageMaker code (and open-source XGBoost) can read Skiff's models,
and Skiff can deploy SageMaker's. The model inside is XGBoost's own JSON or UBJSON, never a
pickle; the legacy binary format (which XGBoost 3.1 and later no longer read) is refused.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import fsspec

from core.errors import AlgorithmError

MEMBER = "xgboost-model"


def archive_bytes(model: bytes) -> bytes:
    """A ``model.tar.gz`` holding ``model`` as ``xgboost-model``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(MEMBER)
        info.size, info.mode = len(model), 0o644
        tar.addfile(info, io.BytesIO(model))
    return buffer.getvalue()


def write_model_archive(model_path: Path, url: str, storage_options: dict[str, Any]) -> None:
    """Write the model at ``model_path`` to ``url`` as SageMaker's ``model.tar.gz``."""
    with fsspec.open(url, "wb", **storage_options) as out:
        out.write(archive_bytes(model_path.read_bytes()))


def model_format(model: bytes) -> str:
    """``json`` or ``ubj`` (XGBoost's own formats, sniffed as XGBoost does).

    Raises:
        AlgorithmError: the legacy binary format, or not an XGBoost model at all.
    """
    head = model.lstrip()[:1]
    if head == b"{":
        return "json" if model.lstrip()[1:2] in (b'"', b" ", b"\n", b"\r", b"\t") else "ubj"
    if model[:4] == b"binf" or model[4:8] == b"binf" or b"gbtree" in model[:256]:
        raise AlgorithmError(
            "the model is in XGBoost's legacy binary format, which XGBoost 3.1 and later no "
            "longer read: load it with XGBoost 3.0 and save it again as JSON or UBJSON "
            "(booster.save_model('xgboost-model.json'))"
        )
    raise AlgorithmError("the model is not an XGBoost model in JSON or UBJSON format")


def read_model_archive(data: bytes, where: str) -> bytes:
    """The ``xgboost-model`` inside a ``model.tar.gz`` (checked: JSON or UBJSON).

    Raises:
        AlgorithmError: not a tar.gz, no model inside, or a model in the legacy format.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
            chosen = (
                MEMBER
                if MEMBER in names
                else next((n for n in names if Path(n).name.startswith(MEMBER)), None)
            )
            if chosen is None:
                raise AlgorithmError(
                    f"{where} holds no {MEMBER!r} (it has: {', '.join(names) or 'nothing'})"
                )
            model = tar.extractfile(chosen).read()  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise AlgorithmError(f"{where} is not a model.tar.gz: {exc}") from None
    try:
        model_format(model)
    except AlgorithmError as exc:
        raise AlgorithmError(f"{where}: {exc}") from None
    return model
