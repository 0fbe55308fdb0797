"""Run a pipeline: steps in order into one run folder, skipping what is unchanged, resuming what was cut off.

A step is skipped when its last run completed with the same fingerprint — a hash of the step's config, the
servers' model identity, the templates it reads and its input files — and its outputs are unchanged on disk.
A step that was interrupted (its state says ``running``) is run again; the stage itself resumes (request
cache, append logs), so no finished work is repeated. Changing an early step's output changes later steps'
inputs, so they re-run too.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cotforge.llm.pricing import run_cost
from cotforge.manifest import config_hash
from cotforge.pipeline.spec import PipelineError, PipelineSpec, ServerSpec, StepSpec
from cotforge.runfolder import RunFolder, atomic_write_text, file_sha256
from cotforge.schemas import utc_now


class StepState(BaseModel):
    """What the runner remembers about one step."""

    model_config = ConfigDict(extra="forbid")

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

    model_config = ConfigDict(extra="forbid")

    name: str
    config_hash: str = ""
    steps: dict[str, StepState] = Field(default_factory=dict)
    # Spend per stage and in total, over every run of this folder (see cotforge.llm.pricing.run_cost).
    cost: dict[str, Any] | None = None


@dataclass
class StepContext:
    """What a stage adapter gets: the run folder, the step's servers, and the pipeline."""

    folder: RunFolder
    pipeline: PipelineSpec
    server_url: Callable[[str], tuple[str, str]]


@dataclass(frozen=True)
class StageAdapter:
    """How the runner calls one stage: its inputs/outputs in the run folder and a run function."""

    name: str
    run: Callable[[StepContext, dict[str, Any]], dict[str, Any]]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    validate: Callable[[dict[str, Any]], None] | None = None
    # True when the step reads state outside the run folder (e.g. reviewers' responses in Argilla), so an
    # unchanged fingerprint does not mean an unchanged result: such a step always runs.
    volatile: Callable[[dict[str, Any]], bool] | None = None


def _tree_hash(root: Path, subdirs: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for sub in subdirs:
        base = root / sub
        for path in sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def _output_hashes(folder: RunFolder, names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in names:
        path = folder.path(name)
        if path.is_file():
            out[name] = file_sha256(path)
        elif path.is_dir():
            out[name] = _tree_hash(folder.root, (name,))
    return out


@dataclass
class PipelineRunner:
    """Runs a validated pipeline with a stage registry; ``servers`` starts/stops vLLM servers on demand."""

    spec: PipelineSpec
    registry: dict[str, StageAdapter]
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
            adapter = self.registry[step.stage]
            server = step.config.get("server")
            if server is not None and server not in self.spec.servers:
                raise PipelineError(
                    f"step {step.name}: server {server!r} is not defined under `servers` "
                    f"(defined: {sorted(self.spec.servers)})"
                )
            if adapter.validate is not None:
                adapter.validate(step.config)

    @property
    def state_path(self) -> Path:
        return self.run_dir / "manifests" / "pipeline.json"

    def load_state(self) -> PipelineState:
        if self.state_path.exists():
            return PipelineState.model_validate_json(self.state_path.read_text(encoding="utf-8"))
        return PipelineState(name=self.spec.name)

    def _save(self, state: PipelineState) -> None:
        atomic_write_text(self.state_path, state.model_dump_json(indent=2) + "\n")

    def fingerprint(self, step: StepSpec, folder: RunFolder) -> str:
        adapter = self.registry[step.stage]
        server = step.config.get("server")
        parts = {
            "stage": step.stage,
            "config": config_hash(step.config),
            "server": self.spec.servers[server].model_dump() if server else None,
            # A server on a model this run trained (e.g. the SFT policy) changes when that model does.
            "server_model": self._run_model_hash(self.spec.servers[server].model, folder) if server else None,
            "templates": _tree_hash(self.templates_root, adapter.templates) if adapter.templates else None,
            "inputs": _output_hashes(folder, adapter.inputs),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    @staticmethod
    def _run_model_hash(model: str, folder: RunFolder) -> str | None:
        if "{run}" not in model:
            return None
        relative = model.replace("{run}", "").strip("/")
        return _tree_hash(folder.root, (relative,))

    def selected(self, start: str | None, until: str | None) -> list[StepSpec]:
        names = [s.name for s in self.spec.steps]
        for label, value in (("--from", start), ("--until", until)):
            if value is not None and value not in names:
                raise PipelineError(f"{label} {value!r}: no such step; steps: {names}")
        lo = names.index(start) if start else 0
        hi = names.index(until) if until else len(names) - 1
        if lo > hi:
            raise PipelineError(f"--from {start} comes after --until {until}")
        return self.spec.steps[lo : hi + 1]

    def run(self, start: str | None = None, until: str | None = None, force: bool = False) -> PipelineState:
        """Run the selected steps; returns the final state (also in ``manifests/pipeline.json``)."""
        folder = RunFolder(self.run_dir).ensure()
        state = self.load_state()
        state.config_hash = config_hash(self.spec.model_dump(mode="json"))
        steps = self.selected(start, until)
        last_use = {
            s.config["server"]: i for i, s in enumerate(steps) if s.config.get("server") in self.spec.servers
        }

        def server_url(name: str) -> tuple[str, str]:
            spec: ServerSpec = self.spec.servers[name]
            return self.servers.url(name, spec)  # type: ignore[no-any-return]

        context = StepContext(folder=folder, pipeline=self.spec, server_url=server_url)
        try:
            for index, step in enumerate(steps):
                adapter = self.registry[step.stage]
                fingerprint = self.fingerprint(step, folder)
                previous = state.steps.get(step.name)
                volatile = adapter.volatile is not None and adapter.volatile(step.config)
                if (
                    not force
                    and not volatile
                    and previous is not None
                    and previous.status == "completed"
                    and previous.fingerprint == fingerprint
                    and previous.outputs == _output_hashes(folder, adapter.outputs)
                ):
                    self.log(f"[{step.name}] unchanged since {previous.finished_at}: skipped")
                    continue
                resumed = previous is not None and previous.status == "running"
                self.log(f"[{step.name}] {'resuming' if resumed else 'running'}")
                started = time.perf_counter()
                current = StepState(
                    status="running", fingerprint=fingerprint, started_at=utc_now().isoformat()
                )
                state.steps[step.name] = current
                self._save(state)
                try:
                    summary = adapter.run(context, step.config)
                except BaseException as exc:
                    current.status = "failed" if isinstance(exc, Exception) else "running"
                    current.error = f"{type(exc).__name__}: {exc}"
                    self._save(state)
                    raise
                current.status = "completed"
                current.finished_at = utc_now().isoformat()
                current.duration_s = round(time.perf_counter() - started, 3)
                current.outputs = _output_hashes(folder, adapter.outputs)
                current.summary = summary
                state.cost = run_cost(folder.root)
                self._save(state)
                server = step.config.get("server")
                if server and last_use.get(server) == index:
                    self.servers.release(server)
        finally:
            self.servers.close()
        return state
