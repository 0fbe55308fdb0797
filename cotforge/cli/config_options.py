"""A stage's config from the command line: ``--config FILE`` < ``--set key=value`` < convenience flags.

Every default and every check lives in the stage's Pydantic config. A convenience flag defaults to "not
given" (None) and names the config key it sets; its type, help text (meaning, choices, default) and default
are read from that config field (:mod:`cotforge.cli.stage_command`), so each flag is written once.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from rich.markup import escape

from cotforge.bounded_yaml import read_yaml_file
from cotforge.config_keys import config_field, near_key, submodel
from cotforge.errors import ConfigError
from cotforge.safe_text import elided, visible

ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML file of the stage's config (its keys are listed below)."),
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Set one config key: key=value, dotted for nested keys (teacher.sampling.seed=1); repeatable. "
        "Wins over --config; the flags win over it.",
    ),
]


def read_config_file(path: Path | None) -> dict[str, Any]:
    """The YAML mapping in ``path`` (empty when no file), read with the bounds every user YAML gets."""
    if path is None:
        return {}
    data = read_yaml_file(path, "config") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def apply_sets(data: dict[str, Any], sets: list[str] | None) -> dict[str, Any]:
    """``data`` with each ``key.path=value`` applied (values parsed as YAML), via the pipeline's parser."""
    from cotforge.pipeline.spec import PipelineError, apply_overrides

    for item in sets or []:
        if item.split("=", 1)[0].strip().split(".")[0] == "steps":
            raise ConfigError(f"--set {item!r}: a stage config has no steps (that is `cotforge run --set`)")
    try:
        return apply_overrides(data, list(sets or []))
    except PipelineError as exc:
        raise ConfigError(str(exc)) from None


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``, leaving out the values that are None (flags not given)."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        *parents, last = dotted.split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return out


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into ``base`` (mappings merge, anything else replaces)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _keys(data: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield f"{prefix}{key}"
            yield from _keys(value, f"{prefix}{key}.")


def _load_model(path: str) -> type[BaseModel]:
    module, _, name = path.partition(":")
    model = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{path} is not a Pydantic model")
    return model


def _literal_choices(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [m.value for m in annotation]
    out: list[Any] = []
    for arg in typing.get_args(annotation):
        out += _literal_choices(arg)
    return out


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "see its keys"
    return "not set" if value is None else repr(value)


def field_help(info: FieldInfo, key: str) -> str:
    """``description. One of: … Default: … (config key: key)`` for one config field."""
    parts = [info.description or ""]
    choices = _literal_choices(info.annotation)
    if choices:
        parts.append("One of: " + ", ".join(str(c) for c in choices) + ".")
    parts.append(f"Default: {_default_text(info)} (config key: {key}).")
    return escape(" ".join(p for p in parts if p))


def config_keys(model: type[BaseModel], prefix: str = "", depth: int = 0) -> list[tuple[str, str, str]]:
    """(key, default, meaning) for every config key, one level of nested models included."""
    rows = []
    for name, info in model.model_fields.items():
        meaning = info.description or ""
        choices = _literal_choices(info.annotation)
        if choices:
            meaning = f"{meaning} One of: {', '.join(str(c) for c in choices)}.".strip()
        rows.append((prefix + name, _default_text(info), meaning))
        sub = submodel(info.annotation)
        if sub is not None and depth < 1:
            rows += config_keys(sub, f"{prefix}{name}.", depth + 1)
    return rows


@dataclass(frozen=True)
class StageConfig:
    """How one command builds its stage config: the model (``module:Class``) and flag → config key.

    ``what`` is the command (``train sft``), named in errors. A flag is spelt ``--<flag>`` (a switch
    ``--<flag>/--no-<flag>``) unless ``spellings`` gives its option names.
    """

    model_path: str
    flags: dict[str, str] = field(default_factory=dict)
    what: str = "stage"
    spellings: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def model(self) -> type[BaseModel]:
        return _load_model(self.model_path)

    def raw(self, config_file: Path | None, sets: list[str] | None) -> dict[str, Any]:
        """The config file's mapping with the ``--set`` items applied (not validated yet)."""
        return apply_sets(read_config_file(config_file), sets)

    def build(self, config_file: Path | None, sets: list[str] | None, /, **flags: Any) -> Any:
        """The validated config: file < --set < the flags given (keyword = parameter name, None = not given)."""
        return self.validate(self.raw(config_file, sets), config_file, sets, **flags)

    def validate(
        self,
        data: dict[str, Any],
        config_file: Path | None,
        sets: list[str] | None,
        /,
        prefix: str = "",
        **flags: Any,
    ) -> Any:
        """``data`` merged with the given flags, validated; an error names where each bad key came from.

        ``prefix`` is where ``data`` sits in the file (``validation.`` for generate's validation section).
        """
        unknown = set(flags) - set(self.flags)
        if unknown:
            raise TypeError(f"flags {sorted(unknown)} are not declared for {self.model_path}")
        given = {self.flags[name]: value for name, value in flags.items() if value is not None}
        model = self.model()
        try:
            return model.model_validate(merge(data, nested(given)))
        except ValidationError as exc:
            raise ConfigError(self.explain(exc, config_file, sets, given, prefix)) from None

    def explain(
        self,
        exc: ValidationError,
        config_file: Path | None,
        sets: list[str] | None,
        given: dict[str, Any],
        prefix: str = "",
    ) -> str:
        """One line: each problem's source (file, --set item, flag), key and what is wrong, ``; ``-separated."""
        flag_of = {key: "--" + name.replace("_", "-") for name, key in self.flags.items()}
        set_items = {item.split("=", 1)[0].strip(): item for item in sets or []}
        file_keys = set(_keys(read_config_file(config_file))) if config_file else set()
        problems = []
        for err in exc.errors():
            key = prefix + ".".join(str(p) for p in err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                near = near_key(self.model(), key[len(prefix) :])
                hint = f"did you mean `{prefix}{near}`? " if near else ""
                msg = f"unknown key; {hint}`cotforge {self.what} --help` lists the keys"
            elif err["type"] == "missing":
                msg = self._how_to_give(key[len(prefix) :], prefix, flag_of)
            elif isinstance(err.get("input"), str | int | float):
                msg = f"{msg} (got '{elided(visible(err['input']), 200)}')"
            problems.append(
                f"{self._source(key, flag_of, given, set_items, file_keys, config_file)}{key}: {msg}"
            )
        return f"invalid `{self.what}` config: {'; '.join(problems)}"

    def _how_to_give(self, key: str, prefix: str, flag_of: dict[str, str]) -> str:
        """What to pass for a missing key (a missing section: its required keys)."""
        leaves = [key]
        try:
            sub = submodel(config_field(self.model(), key).annotation)
        except KeyError:
            sub = None
        if sub is not None:
            leaves = [
                f"{key}.{name}" for name, info in sub.model_fields.items() if info.is_required()
            ] or leaves
        ways = [
            w
            for leaf in leaves
            for w in ([flag_of[leaf]] if leaf in flag_of else []) + [f"--set {prefix}{leaf}=…"]
        ]
        what = ", ".join(prefix + leaf for leaf in leaves)
        return f"required ({what}): pass {' or '.join(ways)}, or set it in --config"

    @staticmethod
    def _source(
        key: str,
        flag_of: dict[str, str],
        given: dict[str, Any],
        set_items: dict[str, str],
        file_keys: set[str],
        config_file: Path | None,
    ) -> str:
        # The most specific source wins: a flag, else the --set item of this key or a parent, else the file.
        chain = [".".join(key.split(".")[:n]) for n in range(key.count(".") + 1, 0, -1)]
        for k in chain:
            if k in given:
                return f"{flag_of[k]}: "
        for k in chain:
            if k in set_items:
                return f"--set {set_items[k]}: "
        # `--set a.b=1` where `a` is not a section: the error is about `a`, the item named `a.b`.
        for set_key, item in set_items.items():
            if set_key.startswith(f"{key}."):
                return f"--set {item}: "
        for k in chain:
            if k in file_keys:
                return f"{config_file}: "
        return ""
