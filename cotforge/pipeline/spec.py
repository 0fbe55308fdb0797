"""Pipeline files: the YAML schema, `--set` overrides, and validation with errors that name the key.

A pipeline is a run folder, the vLLM servers cotforge may start, and an ordered list of steps::

    name: quickstart
    run: runs/quickstart
    servers:
      smollm2: {model: smollm2, max_model_len: 2048}
    steps:
      - ingest: {bundled: true}
      - generate: {server: smollm2, output_mode: tagged}

Each step maps one stage name to that stage's own config model (``extra="forbid"``), so an unknown key or a
bad value fails before anything runs, with the step and key in the message.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from cotforge.bounded_yaml import load_yaml, read_yaml_file
from cotforge.config_keys import near_key
from cotforge.errors import ConfigError
from cotforge.runfolder.declaration import canonical_stage


class PipelineError(ConfigError):
    """A pipeline file that cannot be used; the message names the file, step and key."""


class ServerSpec(BaseModel):
    """A local vLLM server the pipeline starts when a step names it (stopped when no later step needs it)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="Model folder, Hub id, alias 'smollm2', or a path under the run ('{run}/…')."
    )
    served_model_name: str | None = None
    max_model_len: int = 2048
    max_num_seqs: int = Field(default=32, ge=1, json_schema_extra={"operational": True})
    structured: bool = True
    startup_timeout_s: float = Field(default=600.0, gt=0, json_schema_extra={"operational": True})


class StepSpec(BaseModel):
    """One step: the stage to run and its raw config (validated by the stage's own model later)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.stage


class PipelineSpec(BaseModel):
    """A whole pipeline file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    run: str = Field(description="Run folder (relative paths are relative to the working directory).")
    servers: dict[str, ServerSpec] = Field(default_factory=dict)
    steps: list[StepSpec]
    _set_items: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _steps_from_mappings(cls, data: Any) -> Any:
        # YAML writes a step as a one-key mapping {stage: config}; normalise to StepSpec fields.
        if isinstance(data, dict) and isinstance(data.get("steps"), list):
            steps = []
            for i, item in enumerate(data["steps"], start=1):
                if isinstance(item, dict) and "stage" not in item:
                    if len(item) != 1:
                        raise ValueError(
                            f"step {i} must map one stage name to its config, got keys {list(item)}"
                        )
                    ((stage, config),) = item.items()
                    steps.append({"stage": canonical_stage(str(stage)), "config": config or {}})
                elif isinstance(item, dict) and isinstance(item.get("stage"), str):
                    steps.append({**item, "stage": canonical_stage(item["stage"])})
                else:
                    steps.append(item)
            data = {**data, "steps": steps}
        return data

    @model_validator(mode="after")
    def _unique_steps(self) -> PipelineSpec:
        names = [s.name for s in self.steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"each stage may appear once; repeated: {dupes}")
        return self

    def set_items_for(self, step: str | None = None) -> dict[str, str]:
        """The ``--set`` items applied to ``step``'s config (to the pipeline's own keys when ``None``), by
        their dotted key inside it: errors name the item a bad key came from."""
        steps = {s.name for s in self.steps}
        found = {}
        for item in self._set_items:
            parts = [p for p in item.split("=", 1)[0].strip().split(".") if p]
            if step is not None and parts[:1] and canonical_stage(parts[0]) == step:
                found[".".join(parts[1:])] = item
            elif step is None and parts and canonical_stage(parts[0]) not in steps:
                found[".".join(parts)] = item
        return found

    def step(self, name: str) -> StepSpec:
        name = canonical_stage(name)
        for s in self.steps:
            if s.name == name:
                return s
        raise PipelineError(
            f"pipeline {self.name!r} has no step {name!r}; steps: {[s.name for s in self.steps]}"
        )


def _parse_scalar(text: str) -> Any:
    """A --set value as YAML (so ``3``, ``0.5``, ``true``, ``[a, b]`` keep their types)."""
    try:
        return load_yaml(text, "--set value")
    except ConfigError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str], pipeline: bool = False) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides; a step is addressed by its stage name (``pairs.gamma=0.3``). In a
    ``pipeline`` file, a first part that is neither a step nor a pipeline key is refused, naming the steps."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise PipelineError(f"--set {item!r}: expected key=value (e.g. pairs.gamma=0.3)")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise PipelineError(f"--set {item!r}: empty key")
        value = _parse_scalar(raw)
        steps = data.get("steps", [])
        wanted = canonical_stage(parts[0])
        step = next(
            (
                s
                for s in steps
                if isinstance(s, dict) and len(s) == 1 and canonical_stage(str(next(iter(s)))) == wanted
            ),
            None,
        )
        if step is not None:
            name = next(iter(step))
            target = step[name] or {}
            step[name] = target
            parts = parts[1:]
            if not parts:
                raise PipelineError(f"--set {item!r}: name a key inside step {key!r}")
        else:
            if pipeline and parts[0] not in PipelineSpec.model_fields:
                raise PipelineError(_not_a_step(item, parts[0], steps))
            target = data
        for part in parts[:-1]:
            nxt = target.get(part)
            if nxt is None:
                nxt = target[part] = {}
            if not isinstance(nxt, dict):
                raise PipelineError(f"--set {item!r}: {part!r} is not a mapping")
            target = nxt
        target[parts[-1]] = value
    return data


def _not_a_step(item: str, name: str, steps: Any) -> str:
    """The error for ``--set NAME.key=…`` where NAME is neither a step of the pipeline nor a pipeline key."""
    names = [
        canonical_stage(str(next(iter(s)) if "stage" not in s else s["stage"]))
        for s in (steps if isinstance(steps, list) else [])
        if isinstance(s, dict) and s
    ]
    keys = list(PipelineSpec.model_fields)
    near = difflib.get_close_matches(canonical_stage(name), names + keys, n=1, cutoff=0.75)
    hint = f"; did you mean `{near[0]}`?" if near else "; add the step to the file, or leave this --set out"
    return (
        f"--set {item}: {name!r} is not a step of this pipeline (its steps: {', '.join(names) or 'none'}) nor a "
        f"pipeline key ({', '.join(keys)}){hint}"
    )


def load_pipeline(path: Path, overrides: list[str] | None = None) -> PipelineSpec:
    """Read, override and validate a pipeline file; errors name the file and the offending key."""
    try:
        data = read_yaml_file(path, "pipeline file")
    except ConfigError as exc:
        raise PipelineError(str(exc), file=path) from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: expected a mapping with name, run, servers and steps")
    data = apply_overrides(data, overrides or [], pipeline=True)
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        top_level = {
            ".".join(p for p in item.split("=", 1)[0].strip().split(".") if p): item
            for item in overrides or []
        }
        raise PipelineError(
            f"{path}: {format_validation_error(exc, set_items=top_level)}", file=path
        ) from None
    spec._set_items = list(overrides or [])
    return spec


def _set_item_of(key: str, set_items: dict[str, str]) -> str | None:
    """The ``--set`` item that gave ``key``, one of its parents or one of its children."""
    for given, item in set_items.items():
        if given == key or given.startswith(f"{key}.") or key.startswith(f"{given}."):
            return item
    return None


def format_validation_error(
    exc: ValidationError,
    prefix: str = "",
    set_items: dict[str, str] | None = None,
    model: type[BaseModel] | None = None,
) -> str:
    """One line per problem: ``where: what`` (``--set item: where: what`` for a key a ``--set`` gave)."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        where = prefix + ".".join(loc) if loc else prefix.rstrip(".") or "pipeline"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            near = near_key(model, ".".join(loc)) if model is not None else None
            hint = f"did you mean `{near}`?" if near else "check the spelling against the stage's options"
            msg = f"unknown key ({hint})"
        item = _set_item_of(".".join(loc), set_items or {}) if loc else None
        lines.append(f"--set {item}: {where}: {msg}" if item else f"{where}: {msg}")
    return "; ".join(lines)
