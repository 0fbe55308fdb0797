"""A stage declared once: name, config model, edge, inputs, outputs, templates, main-model key.

Each stage's module holds its :class:`StageDeclaration` next to its edge. The edge opens the run folder through
it (:meth:`StageDeclaration.open_run`), which refuses a run folder that cannot be used and a required input that
is missing, empty or unreadable, naming the file and the stage that writes it; the manifest
(:meth:`cotforge.runfolder.manifest.StageRun.declared`) and the pipeline runner's fingerprint read the same input list,
so the two cannot drift. Config models and edges are named as ``"module:attribute"`` and imported only when
used: building the registry imports no model library.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cotforge.errors import ConfigError, StageInputError
from cotforge.runfolder.files import RunFiles, RunFolder, special_file
from cotforge.runfolder.integrity import accepted_changes, verify_inputs
from cotforge.runfolder.stage_names import LEGACY_STAGE_NAMES, canonical_stage, rerun_command, stage_command

__all__ = [
    "LEGACY_STAGE_NAMES",
    "MODEL_CALL_FILES",
    "WRITTEN_BY",
    "StageDeclaration",
    "attribute",
    "canonical_stage",
    "check_input",
    "rerun_command",
    "result_identity",
    "stage_command",
    "usable_run_folder",
]

# The stage that writes each run-folder file or folder (a test checks it against every declaration's outputs).
WRITTEN_BY: dict[str, str] = {
    RunFiles.PROMPTS: "ingest",
    RunFiles.SAMPLES: "generate",
    RunFiles.ACCEPTED: "validate",
    RunFiles.VERDICTS: "validate",
    RunFiles.REVIEWED: "review",
    RunFiles.REVIEW_VERDICTS: "review",
    RunFiles.AUGMENTED: "augment",
    RunFiles.CANDIDATES: "sample",
    RunFiles.JUDGMENTS: "judge",
    RunFiles.PAIRS: "pairs",
    RunFiles.PAIRS_TRL: "pairs",
    RunFiles.PAIRS_SCORES: "pairs",
    f"{RunFiles.MODELS}/sft": "train-sft",
    f"{RunFiles.MODELS}/awdpo": "train-awdpo",
    RunFiles.EVAL_RESULTS: "eval",
}

# Files every model-calling stage reads and writes besides its results: the request cache and usage ledger.
MODEL_CALL_FILES = (RunFiles.CACHE, RunFiles.USAGE)

# Configs are bounded when read (see cotforge.pipeline.spec); this bounds any walk over one.
MAX_CONFIG_DEPTH = 64


def attribute(path: str) -> Any:
    """The object named by ``"package.module:name"``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class StageDeclaration:
    """Everything the pipeline and the manifest need to know about one stage, written once.

    ``inputs`` must exist and be non-empty; ``optional_inputs`` are read when present; ``conditional_inputs``
    maps the validated config to further required inputs (an option that needs a file, such as augmented
    prompts with ``include_augmented``). All three are fingerprinted by the runner and hashed in the manifest.
    ``outputs`` (plus ``conditional_outputs`` of the config: a configurable output folder) are every run file
    the stage writes; a stage that ``calls_models`` also reads and writes the request cache and usage ledger
    (:data:`MODEL_CALL_FILES`), which are bookkeeping, not results. A test runs every stage and fails if it
    touches a run file its declaration does not name. ``resumes`` are the outputs the stage appends to and
    reads back on a re-run: like inputs, they are checked against the manifest that wrote them (a file changed
    since the stage completed is refused; one it left unfinished is resumed).
    """

    name: str
    config: str
    edge: str
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    conditional_inputs: Callable[[Any], Iterable[str]] | None = None
    outputs: tuple[str, ...] = ()
    conditional_outputs: Callable[[Any], Iterable[str]] | None = None
    templates: tuple[str, ...] = ()
    main_model_key: str | None = None
    calls_models: bool = False
    creates_run: bool = False
    resumes: tuple[str, ...] | Callable[[Any], Iterable[str]] = ()
    # True (for a config) when the step reads state outside the run folder, such as reviewers' responses in
    # Argilla: an unchanged fingerprint then proves nothing, so the step always runs.
    volatile: Callable[[Any], bool] | None = None

    @property
    def command(self) -> str:
        """The command that runs this stage (``cotforge train awdpo`` for ``train-awdpo``)."""
        return stage_command(self.name)

    def config_model(self) -> type[BaseModel]:
        return attribute(self.config)  # type: ignore[no-any-return]

    def edge_function(self) -> Callable[..., Any]:
        return attribute(self.edge)  # type: ignore[no-any-return]

    def required_inputs(self, config: Any) -> tuple[str, ...]:
        extra = tuple(self.conditional_inputs(config)) if self.conditional_inputs is not None else ()
        return tuple(dict.fromkeys(self.inputs + extra))

    def all_inputs(self, config: Any) -> tuple[str, ...]:
        """Required and optional inputs, in a stable order (manifest hashes, fingerprints)."""
        return tuple(dict.fromkeys(self.required_inputs(config) + self.optional_inputs))

    def all_outputs(self, config: Any) -> tuple[str, ...]:
        """Every output for ``config``, in a stable order."""
        extra = tuple(self.conditional_outputs(config)) if self.conditional_outputs is not None else ()
        return tuple(dict.fromkeys(self.outputs + extra))

    def resumed_outputs(self, config: Any) -> tuple[str, ...]:
        """The outputs the stage appends to and reads back on a re-run, for ``config``."""
        return tuple(self.resumes(config)) if callable(self.resumes) else self.resumes

    def open_run(self, run_dir: str | Path, config: Any) -> RunFolder:
        """The run folder, once it and every required input are usable and every input present is vouched for
        by the manifest that wrote it (:mod:`cotforge.runfolder.integrity`); else :class:`StageInputError`."""
        folder = usable_run_folder(run_dir, self.name, create=self.creates_run)
        for name in self.required_inputs(config):
            check_input(folder, self.name, name)
        checked = (*self.all_inputs(config), *self.resumed_outputs(config))
        for name in checked:
            check_regular(folder, self.name, name)
        verify_inputs(folder, self.name, checked, accepted_changes())
        return folder


def usable_run_folder(run_dir: str | Path, stage: str, create: bool = False) -> RunFolder:
    """A run folder that exists (or, for ``create``, can be made), is a folder, and can be written."""
    root = Path(run_dir)
    if root.exists() and not root.is_dir():
        raise StageInputError(f"{stage}: --run {root} is a file, not a run folder", stage=stage, file=root)
    if not root.exists():
        if not create:
            raise StageInputError(
                f"{stage}: run folder {root} does not exist; check the path (a run starts with "
                f"`cotforge ingest --run {root}`)",
                stage=stage,
                file=root,
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StageInputError(
                f"{stage}: cannot create run folder {root}: {exc.strerror}", stage=stage, file=root
            ) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise StageInputError(
            f"{stage}: run folder {root} is read-only; copy it somewhere writable or fix its permissions",
            stage=stage,
            file=root,
        )
    manifests = root / RunFiles.MANIFESTS
    if manifests.exists() and not manifests.is_dir():
        raise StageInputError(
            f"{stage}: {manifests} is a file; it must be the run's manifests folder (move the file away)",
            stage=stage,
            file=manifests,
        )
    return RunFolder(root)


def _writer_hint(folder: RunFolder, name: str) -> str:
    writer = WRITTEN_BY.get(name)
    if writer is None:
        return ""
    return f"; it is written by the `{writer}` stage: run `{stage_command(writer)} --run {folder.root}` first"


def check_input(folder: RunFolder, stage: str, name: str) -> None:
    """Raise :class:`StageInputError` unless input ``name`` exists, has content and can be read."""
    path = folder.path(name)
    hint = _writer_hint(folder, name)
    expects_dir = name.startswith(RunFiles.MODELS + "/")
    if not path.exists():
        raise StageInputError(f"{stage}: input {path} is missing{hint}", stage=stage, file=path)
    check_regular(folder, stage, name)
    if expects_dir:
        if not path.is_dir() or not any(path.iterdir()):
            raise StageInputError(
                f"{stage}: input {path} must be a non-empty model folder{hint}", stage=stage, file=path
            )
        return
    if path.is_dir():
        raise StageInputError(
            f"{stage}: input {path} is a folder, but a file is expected (move the folder away){hint}",
            stage=stage,
            file=path,
        )
    try:
        has_content = _has_content(path)
    except OSError as exc:
        raise StageInputError(
            f"{stage}: input {path} cannot be read ({exc.strerror}){hint}", stage=stage, file=path
        ) from None
    if not has_content:
        raise StageInputError(f"{stage}: input {path} is empty{hint}", stage=stage, file=path)


def check_regular(folder: RunFolder, stage: str, name: str) -> None:
    """Refuse input ``name`` when it is a device, FIFO or socket (reading one may never end), or a folder where a
    file (a name with a suffix) is expected."""
    path = folder.path(name)
    special = special_file(path)
    if special is None and Path(name).suffix and path.is_dir():
        special = "a folder, but a file is expected"
    if special is not None:
        raise StageInputError(
            f"{stage}: input {path} is {special} (move it away){_writer_hint(folder, name)}",
            stage=stage,
            file=path,
        )


def _has_content(path: Path) -> bool:
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            if block.strip():
                return True
    return False


def result_identity(value: Any, depth: int = 0) -> Any:
    """``value`` as plain data without the fields marked ``json_schema_extra={"operational": True}``.

    Operational fields (concurrency, timeouts, progress, logging and checkpoint cadence) change how a step runs,
    not what it produces, so they are left out of its fingerprint.
    """
    if depth > MAX_CONFIG_DEPTH:
        raise ConfigError(f"a config nested deeper than {MAX_CONFIG_DEPTH} levels")
    if isinstance(value, BaseModel):
        out = {}
        for name, field in type(value).model_fields.items():
            extra = field.json_schema_extra
            if isinstance(extra, dict) and extra.get("operational"):
                continue
            out[name] = result_identity(getattr(value, name), depth + 1)
        return out
    if isinstance(value, dict):
        return {str(k): result_identity(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [result_identity(v, depth + 1) for v in value]
    return value if isinstance(value, str | int | float | bool | None) else str(value)
