"""Dotted config keys (``teacher.sampling.seed``) over nested Pydantic configs: the model a field holds, and
the key a misspelt one most likely meant. Shared by the CLI's flags and ``--set`` and by pipeline files."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel


def submodel(annotation: Any) -> type[BaseModel] | None:
    """The Pydantic model inside ``annotation`` (``X``, ``X | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = submodel(arg)
            if found is not None:
                return found
    return None


def near_key(model: type[BaseModel], dotted: str) -> str | None:
    """The config key a misspelt ``dotted`` key most likely meant (``gama`` → ``gamma``), if one is close."""
    *parents, last = dotted.split(".")
    for part in parents:
        field = model.model_fields.get(part)
        sub = None if field is None else submodel(field.annotation)
        if sub is None:
            return None
        model = sub
    names = [*model.model_fields, *(f.alias for f in model.model_fields.values() if f.alias)]
    close = difflib.get_close_matches(last, names, n=1, cutoff=0.75)
    return ".".join([*parents, close[0]]) if close else None
