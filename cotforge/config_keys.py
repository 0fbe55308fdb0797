"""Dotted config keys (``teacher.sampling.seed``) over nested Pydantic configs: the model a field holds, and
the key a misspelt one most likely meant. Shared by the CLI's flags and ``--set`` and by pipeline files."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo


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


def parent_model(model: type[BaseModel], dotted: str) -> type[BaseModel]:
    """The config model that holds the last part of ``dotted`` (``teacher.sampling.seed`` → ``SamplingParams``);
    KeyError when a parent part is not a field holding a config."""
    for part in dotted.split(".")[:-1]:
        field = model.model_fields.get(part)
        sub = None if field is None else submodel(field.annotation)
        if sub is None:
            raise KeyError(dotted)
        model = sub
    return model


def config_field(model: type[BaseModel], dotted: str) -> FieldInfo:
    """The field a dotted key names (``teacher.sampling.seed``); KeyError when the config has none."""
    return parent_model(model, dotted).model_fields[dotted.rpartition(".")[2]]


def near_key(model: type[BaseModel], dotted: str) -> str | None:
    """The config key a misspelt ``dotted`` key most likely meant (``gama`` → ``gamma``), if one is close."""
    try:
        holder = parent_model(model, dotted)
    except KeyError:
        return None
    parent, _, last = dotted.rpartition(".")
    names = [*holder.model_fields, *(f.alias for f in holder.model_fields.values() if f.alias)]
    close = difflib.get_close_matches(last, names, n=1, cutoff=0.75)
    return ".".join([p for p in (parent, close[0]) if p]) if close else None
