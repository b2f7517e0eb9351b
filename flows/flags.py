"""Command-line flags from a pydantic model, and back: one flag per field (nested models
flattened, so ``xgboost.max_depth`` is ``--max-depth``), each with the field's description,
bounds and default in its help; unset flags keep the model's defaults, and pydantic validates
what comes back. The pipeline's flags, the endpoint commands' and the deploy flow's all come
from here, so a flag and a flow parameter always agree.
"""

from __future__ import annotations

import argparse
import json
import re
import types
from typing import Any, Literal, NoReturn, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import SkipJsonSchema

from algorithms.xgboost_params import XGBoostHyperparameters, describe_range

M = TypeVar("M", bound=BaseModel)


class Parser(argparse.ArgumentParser):
    """An argument parser whose refusal is one line (the pipeline's usage alone is 60 lines,
    which buried the error): what is wrong, and where the options are listed. Exit 2. Its
    help is plain text: the docstrings it quotes lose their reST quoting."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")

    def format_help(self) -> str:
        return plain_text(super().format_help())


def plain_text(text: str) -> str:
    """``code`` and :role:`name` as people read them: code, name."""
    return re.sub(r"(?::[a-z]+:)?``?([^`]+)``?", r"\1", text)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_value(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, _scalar(value)


def _help(field: Any, annotation: Any, owner: type[BaseModel], name: str) -> str:
    text = field.description or ""
    if owner is XGBoostHyperparameters:
        text += f"; {describe_range(name)}"
    default = field.get_default(call_default_factory=True)
    if default is None or default == {} or isinstance(default, BaseModel):
        return text
    return f"{text} (default: {default})"


def _or_none(kind: type) -> Any:
    """A flag type that also takes 'none' (for optional fields)."""

    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null") else kind(text)

    parse.__name__ = kind.__name__
    return parse


def add_config_arguments(
    parser: argparse.ArgumentParser,
    model: type[BaseModel],
    prefix: tuple[str, ...] = (),
    title: str | None = None,
) -> None:
    """Add a flag per field (nested models flattened); unset flags keep the model's defaults.

    A field left out of the forms (``SkipJsonSchema``: a backend's ``threads``, which the
    top level's ``--threads`` sets) gets no flag. A flag another model already took is
    qualified by its model's name (``--<prefix>-<name>``).
    """
    group = parser.add_argument_group(title or f"{' '.join(prefix)} options") if prefix else parser
    for name, field in model.model_fields.items():
        if any(isinstance(m, SkipJsonSchema) for m in field.metadata):
            continue
        annotation = _unwrap_optional(field.annotation)
        optional = annotation is not field.annotation
        dest = ".".join((*prefix, name))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            add_config_arguments(parser, annotation, (*prefix, name))
            continue
        flag = _flag(field.alias or name)
        kwargs: dict[str, Any] = {
            "dest": dest,
            "default": argparse.SUPPRESS,
            "help": _help(field, annotation, model, name),
            "metavar": (field.alias or name).upper(),
        }
        if annotation is bool:
            kwargs |= {"action": argparse.BooleanOptionalAction, "metavar": None}
        elif get_origin(annotation) is Literal:
            kwargs |= {"choices": get_args(annotation), "metavar": None}
        elif get_origin(annotation) is dict:
            flag = _flag(name.removesuffix("s"))
            kwargs |= {"action": "append", "type": _key_value, "metavar": "NAME=VALUE"}
        elif get_origin(annotation) is list:
            kwargs |= {"nargs": "+"}
        elif annotation in (int, float, str):
            kwargs["type"] = _or_none(annotation) if optional else annotation
        try:
            group.add_argument(flag, **kwargs)
        except argparse.ArgumentError:  # taken: say whose this one is
            group.add_argument(f"--{prefix[-1]}-{flag[2:]}" if prefix else flag, **kwargs)


def config_from_arguments(args: argparse.Namespace, model: type[M]) -> M:
    """Turn parsed flags (dotted dests) back into the nested config; pydantic validates it."""
    nested: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if dest.split(".")[0] not in model.model_fields:
            continue
        *parents, leaf = dest.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        pairs = isinstance(value, list) and all(isinstance(v, tuple) for v in value)
        if pairs:  # NAME=VALUE flags make a dict (beside any named flags of the same model)
            target.setdefault(leaf, {}).update(dict(value))
        else:
            target[leaf] = value
    return model.model_validate(nested)
