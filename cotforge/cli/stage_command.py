"""Stage commands: each flag is declared once (flag → config key) and typed, helped and defaulted by the field.

:func:`stage_command` registers a command whose ``--config``, ``--set`` and flags build the stage's config
model; the decorated function receives the validated ``config`` and does only its own work (call the edge,
print a summary). The flags' click options are made from the config fields when the command is first parsed
or helped, not when the command line is built, so ``cotforge --help`` imports no stage module.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
import typer.main
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich.markup import escape
from typer.core import TyperCommand

from cotforge.cli.common import friendly_errors
from cotforge.cli.config_options import (
    ConfigFile,
    Sets,
    StageConfig,
    config_keys,
    field_help,
)
from cotforge.config_keys import config_field
from cotforge.runfolder.integrity import accepting_changes

AcceptChanged = Annotated[
    list[str] | None,
    typer.Option(
        "--accept-changed",
        metavar="FILE",
        help="Read this run file as it is although the manifest that wrote it no longer vouches for it (edited "
        "by hand, unfinished, or from another run); the acceptance is recorded in that manifest. Repeatable.",
    ),
]

# The flags' values travel from the parser to the command here, past typer's own parameter check.
_FLAG_VALUES = "cotforge.flags"
Prepare = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], dict[str, Any]]


def _members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _scalar(annotation: Any) -> type:
    if typing.get_origin(annotation) is typing.Literal:
        return type(typing.get_args(annotation)[0])
    return annotation if annotation in (int, float, bool) else str


def flag_annotation(info: FieldInfo) -> Any:
    """The command-line type of a flag for the config field ``info`` (always optional: None = not given)."""
    members = _members(info.annotation)
    lists = [m for m in members if typing.get_origin(m) in (list, tuple, set)]
    if lists:
        item = (typing.get_args(lists[0]) or (str,))[0]
        return list[_scalar(item)] | None  # type: ignore[misc]
    if any(_is_model(m) for m in members):
        return bool | None  # a section switched on with its defaults (`--lora`)
    if bool in members:
        return bool | None
    return _scalar(members[0]) | None


def flag_value(info: FieldInfo, value: Any) -> Any:
    """A flag's parsed value as the config key wants it; ``None`` when the flag was not given."""
    if value is None or value == () or value == []:
        return None
    members = _members(info.annotation)
    if isinstance(value, list | tuple):
        value = list(value)
        if str in members and len(value) == 1:
            return value[0]  # `str | list[str]`: one value stays a string
    if any(_is_model(m) for m in members):
        return {} if value else None
    if Path in members:
        # A flag's path is relative to the working directory; a config file's to the run folder.
        return str(Path(value).expanduser().resolve())
    return value


# Short forms flags have always had, unless a command spells the flag otherwise.
SHORT_FORMS = {"model": ("--model", "-m")}


def _declarations(stage: StageConfig, flag: str, annotation: Any) -> tuple[str, ...]:
    spelt = {**SHORT_FORMS, **stage.spellings}
    if flag in spelt:
        return spelt[flag]
    name = "--" + flag.replace("_", "-")
    is_switch = bool in _members(annotation) and typing.get_origin(annotation) is not list
    return (name,) if not is_switch else (f"{name}/--no-{flag.replace('_', '-')}",)


def flag_options(stage: StageConfig) -> list[Any]:
    """The click options of the stage's flags, typed and helped from the config fields."""
    model = stage.model()
    parameters = []
    for flag, key in stage.flags.items():
        info = config_field(model, key)
        annotation = flag_annotation(info)
        decls = _declarations(stage, flag, annotation)
        if any(_is_model(m) for m in _members(info.annotation)):
            decls = tuple(d.split("/")[0] for d in decls)  # `--lora` only switches a section on
        option = typer.Option(*decls, help=field_help(info, key))
        parameters.append(
            inspect.Parameter(
                flag, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[annotation, option]
            )
        )

    def holder(**_: Any) -> None:
        """Only carries the generated signature."""

    holder.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    scratch = typer.Typer()
    scratch.command()(holder)
    return list(typer.main.get_command(scratch).params)


class StageCommand(TyperCommand):
    """A command whose flags are made from its stage config when first needed, with the key table in --help."""

    stage: ClassVar[StageConfig]
    _generated: frozenset[str] | None = None

    @property  # type: ignore[override]
    def params(self) -> list[Any]:
        # One list, kept: click appends and pops its --help option on it.
        if self._generated is None:
            options = flag_options(self.stage)
            self._generated = frozenset(o.name for o in options)
            self._params.extend(options)
        return self._params

    @params.setter
    def params(self, value: list[Any]) -> None:
        self._params = list(value)
        self._generated = None

    def invoke(self, ctx: Any) -> Any:
        generated = self._generated or frozenset()
        ctx.meta[_FLAG_VALUES] = {k: ctx.params.pop(k) for k in list(ctx.params) if k in generated}
        return super().invoke(ctx)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from rich.console import Console
        from rich.table import Table

        super().format_help(ctx, formatter)
        model = self.stage.model()
        table = Table(
            title=f"Config keys ({model.__name__}): --config FILE, --set key=value",
            title_justify="left",
            box=None,
            padding=(0, 1),
        )
        for column in ("key", "default", "meaning"):
            table.add_column(column, overflow="fold")
        for key, default, meaning in config_keys(model):
            table.add_row(key, escape(default), escape(meaning))
        Console().print(table)


def stage_command(
    app: typer.Typer,
    stage: StageConfig,
    name: str | None = None,
    prepare: Prepare | None = None,
    sections: dict[str, StageConfig] | None = None,
    reads_run_files: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the command that builds ``stage``'s config from the command line.

    A command that ``reads_run_files`` (runs a declared stage, which checks its inputs against their manifests)
    also takes ``--accept-changed FILE``.

    The function takes ``config`` (the validated config) and its own typer parameters (``run``, arguments,
    flags that set no config key). ``prepare(raw, params)`` may edit the raw mapping (file and ``--set``) with
    the function's own parameters and the flags given (``None``: not given) before the flags apply; each of ``sections`` (``validation`` for generate)
    is taken out of the raw mapping, built with its own StageConfig and passed under its name.
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)
        own = [
            p.replace(annotation=_evaluated(func, p.annotation))
            for p in signature.parameters.values()
            if p.name != "config" and p.name not in (sections or {})
        ]
        added = [
            inspect.Parameter(
                "config_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigFile
            ),
            inspect.Parameter("sets", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Sets),
        ]
        if reads_run_files:
            added.append(
                inspect.Parameter(
                    "accept_changed", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=AcceptChanged
                )
            )

        @functools.wraps(func)
        def command(**params: Any) -> Any:
            config_file, sets = params.pop("config_file"), params.pop("sets")
            accepted = params.pop("accept_changed", None) or ()
            flags = typer.main.get_current_context().meta.get(_FLAG_VALUES, {})
            raw = stage.raw(config_file, sets)
            built = {}
            for section, section_stage in (sections or {}).items():
                built[section] = section_stage.validate(
                    raw.pop(section, None) or {}, config_file, sets, prefix=f"{section}."
                )
            model = stage.model()
            given = {flag: flag_value(config_field(model, stage.flags[flag]), v) for flag, v in flags.items()}
            if prepare is not None:
                raw = prepare(raw, params, given)
            config = stage.validate(raw, config_file, sets, **given)
            with accepting_changes(accepted):
                return func(config=config, **built, **params)

        command.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in [*own, *added]}
        cls = type("StageCommand", (StageCommand,), {"stage": stage})
        app.command(name=name, cls=cls)(friendly_errors(command))
        return func

    return register


def _evaluated(func: Callable[..., Any], annotation: Any) -> Any:
    # Annotations are strings (`from __future__ import annotations`); only the command's own parameters are
    # evaluated, in its module: `config` names a stage model imported under TYPE_CHECKING only.
    if isinstance(annotation, str):
        return eval(annotation, func.__globals__)
    return annotation
