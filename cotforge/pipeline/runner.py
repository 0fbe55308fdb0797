"""Run a pipeline: steps in order into one run folder, skipping what is unchanged, resuming what was cut off.

A step is skipped when its last run completed with the same fingerprint — a hash of the step's config (less
its operational fields), the servers' model identity, the templates it reads and its input files, all read from
the stage's declaration — and its outputs are unchanged on disk.
A step that was interrupted (its state says ``running``) is run again; the stage itself resumes (request
cache, append logs), so no finished work is repeated. Changing an early step's output changes later steps'
inputs, so they re-run too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cotforge.errors import OutputWriteError
from cotforge.llm.pricing import run_cost
from cotforge.pipeline.spec import PipelineError, PipelineSpec, ServerSpec, StepSpec, format_validation_error
from cotforge.pipeline.stages import resolve_servers
from cotforge.runfolder import RunFolder, atomic_write_text
from cotforge.runfolder.declaration import (
    StageDeclaration,
    canonical_stage,
    result_identity,
    usable_run_folder,
)
from cotforge.runfolder.files import content_sha256, tree_sha256
from cotforge.runfolder.integrity import accept_file, run_file_name
from cotforge.runfolder.manifest import config_hash
from cotforge.schemas import utc_now


class StepState(BaseModel):
    """What the runner remembers about one step (keys a newer cotforge wrote are kept)."""

    model_config = ConfigDict(extra="allow")

    status: str
    fingerprint: str
    started_at: str
    finished_at: str | None = None
    duration_s: float | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class PipelineState(BaseModel):
    """``manifests/pipeline.json``: the pipeline's config hash and each step's state."""

    model_config = ConfigDict(extra="allow")

    name: str
    config_hash: str = ""
    steps: dict[str, StepState] = Field(default_factory=dict)
    # Spend per stage and in total, over every run of this folder (see cotforge.llm.pricing.run_cost).
    cost: dict[str, Any] | None = None


def _output_hashes(folder: RunFolder, names: tuple[str, ...]) -> dict[str, str]:
    hashes = {name: content_sha256(folder.path(name), folder.root) for name in names}
    return {name: h for name, h in hashes.items() if h is not None}


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _placeholder(name: str) -> tuple[str, str]:
    return "http://127.0.0.1:1/v1", name


def _summary(result: Any) -> dict[str, Any]:
    if hasattr(result, "summary") and callable(result.summary):
        result = result.summary()
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    if not isinstance(result, dict):
        return {}
    # Long lists (per-step logs, rows) belong in the stage's own manifest, not in the pipeline state.
    return {k: v for k, v in result.items() if not (isinstance(v, list) and len(v) > 20)}


@dataclass
class PipelineRunner:
    """Runs a validated pipeline with a stage registry; ``servers`` starts/stops vLLM servers on demand."""

    spec: PipelineSpec
    registry: dict[str, StageDeclaration]
    servers: Any  # ServerPool-like: .url(name, spec) -> (base_url, model); .release(name); .close()
    templates_root: Path
    log: Callable[[str], None] = print
    run_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.spec.run)
        unknown = [s.stage for s in self.spec.steps if s.stage not in self.registry]
        if unknown:
            raise PipelineError(f"unknown stage(s) {unknown}; known stages: {sorted(self.registry)}")
        for step in self.spec.steps:
            server = step.config.get("server")
            if server is not None and server not in self.spec.servers:
                raise PipelineError(
                    f"step {step.name}: server {server!r} is not defined under `servers` "
                    f"(defined: {sorted(self.spec.servers)})"
                )
            self.config(step)

    def config(self, step: StepSpec, url_of: Callable[[str], tuple[str, str]] = _placeholder) -> Any:
        """The step's validated config; ``server:`` entries resolved with ``url_of``."""
        declaration = self.registry[step.stage]
        raw = resolve_servers(step.stage, step.config, url_of)
        model = declaration.config_model()
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            named = format_validation_error(exc, set_items=self.spec.set_items_for(step.name), model=model)
            raise PipelineError(f"step {step.name}: {named}") from None

    @property
    def state_path(self) -> Path:
        return self.run_dir / "manifests" / "pipeline.json"

    def load_state(self, force: bool = False) -> PipelineState:
        """The saved state; a corrupt one is an error naming the file (``force`` sets it aside and starts anew)."""
        path = self.state_path
        if not path.exists():
            return PipelineState(name=self.spec.name)
        try:
            state = PipelineState.model_validate_json(path.read_bytes())
            # A state written before the stages had one name keys some steps by an old name.
            state.steps = {canonical_stage(name): step for name, step in state.steps.items()}
            return state
        except (ValidationError, OSError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) else "not a valid pipeline state"
            if not force:
                raise PipelineError(
                    f"{path}: {problem}; run with --force to set it aside and run every selected step again"
                ) from None
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        self.log(f"{path}: could not be read; moved to {aside.name}, starting a new state")
        return PipelineState(name=self.spec.name)

    def _save(self, state: PipelineState) -> None:
        atomic_write_text(self.state_path, state.model_dump_json(indent=2) + "\n")

    def fingerprint(self, step: StepSpec, folder: RunFolder) -> str:
        declaration = self.registry[step.stage]
        config = self.config(step)
        server = step.config.get("server")
        server_spec = self.spec.servers[server] if server else None
        parts = {
            "stage": step.stage,
            "config": config_hash(result_identity(config)),
            "server": result_identity(server_spec) if server_spec is not None else None,
            # A server on a model this run trained (e.g. the SFT policy) changes when that model does.
            "server_model": self._run_model_hash(server_spec.model, folder) if server_spec else None,
            "templates": tree_sha256(self.templates_root, declaration.templates)
            if declaration.templates
            else None,
            "inputs": _output_hashes(folder, self._upstream_inputs(step, config)),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def _upstream_inputs(self, step: StepSpec, config: Any) -> tuple[str, ...]:
        """The step's inputs less the optional ones only a later step writes (e.g. validate's augmented.jsonl
        in a pipeline where augment runs after it): such a file was absent when the step ran, so its
        appearance is not a change to the step's inputs and must not re-run it and everything after."""
        declaration = self.registry[step.stage]
        names = [s.name for s in self.spec.steps]
        index = names.index(step.name)
        before = {o for s in self.spec.steps[: index + 1] for o in self._outputs(s)}
        later = {o for s in self.spec.steps[index + 1 :] for o in self._outputs(s)} - before
        required = set(declaration.required_inputs(config))
        # A step that reads what it wrote before (ingest merges into prompts.jsonl) is not changed by it.
        own = set(declaration.all_outputs(config))
        return tuple(
            n for n in declaration.all_inputs(config) if n not in own and (n in required or n not in later)
        )

    def _outputs(self, step: StepSpec) -> tuple[str, ...]:
        return self.registry[step.stage].all_outputs(self.config(step))

    @staticmethod
    def _run_model_hash(model: str, folder: RunFolder) -> str | None:
        if "{run}" not in model:
            return None
        relative = model.replace("{run}", "").strip("/")
        return tree_sha256(folder.root, (relative,))

    def selected(self, start: str | None, until: str | None) -> list[StepSpec]:
        names = [s.name for s in self.spec.steps]
        start = canonical_stage(start) if start else start
        until = canonical_stage(until) if until else until
        for label, value in (("--from", start), ("--until", until)):
            if value is not None and value not in names:
                raise PipelineError(f"{label} {value!r}: no such step; steps: {names}")
        lo = names.index(start) if start else 0
        hi = names.index(until) if until else len(names) - 1
        if lo > hi:
            raise PipelineError(f"--from {start} comes after --until {until}")
        return self.spec.steps[lo : hi + 1]

    def _call(self, step: StepSpec, url_of: Callable[[str], tuple[str, str]]) -> dict[str, Any]:
        declaration = self.registry[step.stage]
        config = self.config(step, url_of)
        # `{run}` in a top-level path means this run folder (e.g. AW-DPO starting from the SFT output).
        runs = {
            k: v.replace("{run}", str(self.run_dir))
            for k, v in config.model_dump(include=set(type(config).model_fields)).items()
            if isinstance(v, str) and "{run}" in v
        }
        if runs:
            config = config.model_copy(update=runs)
        return _summary(declaration.edge_function()(self.run_dir, config))

    def accept_changes(self, names: Sequence[str], state: PipelineState, folder: RunFolder) -> None:
        """``--accept-changed``: take each named run file as it is now. Its writer's manifest records the content
        accepted; a step of this pipeline that writes it takes the new hash, so it is not re-run over the edit;
        the steps that read it see a changed input and run again."""
        outputs = {o: s for s in self.spec.steps for o in self._outputs(s)}
        inputs = {i for s in self.spec.steps for i in self.registry[s.stage].all_inputs(self.config(s))}
        for given in names:
            name = run_file_name(folder, given)
            if name not in outputs and name not in inputs:
                raise PipelineError(
                    f"--accept-changed {given}: no step of this pipeline reads or writes {name} (they use: "
                    f"{', '.join(sorted(inputs | set(outputs)))})"
                )
            problem = accept_file(folder, name, by=f"cotforge run {self.spec.name}")
            writer = outputs.get(name)
            step = state.steps.get(writer.name) if writer is not None else None
            if step is not None and step.status == "completed":
                step.outputs.update(_output_hashes(folder, (name,)))
            what = f"{problem.kind}: {problem.detail}" if problem else "its manifest vouches for it as it is"
            self.log(f"{name}: accepted as it is ({what})")

    def retry_steps(self, names: Sequence[str], steps: Sequence[StepSpec]) -> set[str]:
        """The selected steps ``--retry-failed`` names (by step or stage name); a name that fits none is an error."""
        chosen: set[str] = set()
        for name in names:
            hits = [s for s in steps if canonical_stage(name) in (s.name, s.stage)]
            if not hits:
                raise PipelineError(
                    f"--retry-failed {name!r}: no such step among those selected ({[s.name for s in steps]})"
                )
            for step in hits:
                if "retry_failed" not in self.registry[step.stage].config_model().model_fields:
                    able = sorted(
                        s.name
                        for s in steps
                        if "retry_failed" in self.registry[s.stage].config_model().model_fields
                    )
                    raise PipelineError(
                        f"--retry-failed {name!r}: step {step.name} ({step.stage}) makes no model calls to retry; "
                        f"steps that can: {able}"
                    )
                chosen.add(step.name)
        return chosen

    def run(
        self,
        start: str | None = None,
        until: str | None = None,
        force: bool = False,
        retry_failed: Sequence[str] = (),
        accept_changed: Sequence[str] = (),
    ) -> PipelineState:
        """Run the selected steps; returns the final state (also in ``manifests/pipeline.json``).

        ``retry_failed`` names steps (or stages) to run again, even when unchanged, asking only the records they
        rejected for a retryable reason; later steps then re-run as their inputs changed. ``accept_changed``
        names run files edited by hand to keep as they are (see :meth:`accept_changes`).
        """
        steps = self.selected(start, until)
        retrying = self.retry_steps(retry_failed, steps)
        steps = [
            s.model_copy(update={"config": {**s.config, "retry_failed": True}}) if s.name in retrying else s
            for s in steps
        ]
        creates = bool(steps) and self.registry[steps[0].stage].creates_run
        folder = usable_run_folder(self.run_dir, steps[0].stage if steps else "run", create=creates)
        state = self.load_state(force)
        state.config_hash = config_hash(self.spec.model_dump(mode="json"))
        # The usage ledger and the manifests are read after every step: one that cannot be read is named now,
        # before any step writes.
        run_cost(folder.root)
        self.accept_changes(accept_changed, state, folder)
        last_use = {
            s.config["server"]: i for i, s in enumerate(steps) if s.config.get("server") in self.spec.servers
        }

        def server_url(name: str) -> tuple[str, str]:
            spec: ServerSpec = self.spec.servers[name]
            return self.servers.url(name, spec)  # type: ignore[no-any-return]

        try:
            for index, step in enumerate(steps):
                declaration = self.registry[step.stage]
                fingerprint = self.fingerprint(step, folder)
                previous = state.steps.get(step.name)
                volatile = declaration.volatile is not None and declaration.volatile(self.config(step))
                if (
                    not force
                    and step.name not in retrying
                    and not volatile
                    and previous is not None
                    and previous.status == "completed"
                    and previous.fingerprint == fingerprint
                    and previous.outputs == _output_hashes(folder, self._outputs(step))
                ):
                    self.log(f"[{step.name}] unchanged since {previous.finished_at}: skipped")
                    continue
                if (
                    previous is not None
                    and previous.status == "completed"
                    and previous.fingerprint == fingerprint
                ):
                    edited = _changed(previous.outputs, _output_hashes(folder, self._outputs(step)))
                    if edited and not force and step.name not in retrying and not volatile:
                        self.log(
                            f"[{step.name}] {', '.join(edited)} changed since the step completed: running it "
                            f"again (to keep the edit instead: --accept-changed {edited[0]})"
                        )
                resumed = previous is not None and previous.status == "running"
                doing = (
                    "retrying failed records"
                    if step.name in retrying
                    else "resuming"
                    if resumed
                    else "running"
                )
                self.log(f"[{step.name}] {doing}")
                started = time.perf_counter()
                current = StepState(
                    status="running", fingerprint=fingerprint, started_at=utc_now().isoformat()
                )
                state.steps[step.name] = current
                self._save(state)
                try:
                    summary = self._call(step, server_url)
                except BaseException as exc:
                    current.status = "failed" if isinstance(exc, Exception) else "running"
                    current.error = f"{type(exc).__name__}: {exc}"
                    # On a full disk the state file is refused too; the step's own error says which file, and
                    # the state already says "running", which the next run resumes.
                    with contextlib.suppress(OutputWriteError):
                        self._save(state)
                    raise
                current.finished_at = utc_now().isoformat()
                current.duration_s = round(time.perf_counter() - started, 3)
                current.summary = summary
                try:
                    current.outputs = _output_hashes(folder, self._outputs(step))
                    state.cost = run_cost(folder.root)
                except BaseException as exc:
                    # The stage finished, but what follows it did not: the state must not say "running".
                    current.status = "failed" if isinstance(exc, Exception) else "running"
                    current.error = f"after the stage finished: {type(exc).__name__}: {exc}"
                    with contextlib.suppress(OutputWriteError):
                        self._save(state)
                    raise
                current.status = "completed"
                self._save(state)
                server = step.config.get("server")
                if server and last_use.get(server) == index:
                    self.servers.release(server)
        finally:
            self.servers.close()
        return state
