"""Stage declarations: one list of inputs for manifest and runner, operational knobs out of the fingerprint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cotforge.pipeline.runner import PipelineRunner
from cotforge.pipeline.spec import load_pipeline
from cotforge.pipeline.stages import registry
from cotforge.runfolder import RunFiles, RunFolder, atomic_write_jsonl
from cotforge.runfolder.declaration import WRITTEN_BY
from cotforge.templates import templates_root
from tests.factories import make_prompt

pytestmark = pytest.mark.unit


class NoServers:
    def url(self, name, spec):  # type: ignore[no-untyped-def]
        raise AssertionError("fingerprints need no server")

    def release(self, name: str) -> None: ...

    def close(self) -> None: ...


def _runner(tmp_path: Path, steps: list[dict], sets: list[str] | None = None) -> PipelineRunner:  # type: ignore[type-arg]
    path = tmp_path / "p.yaml"
    servers = {"m": {"model": "smollm2"}}
    path.write_text(
        yaml.safe_dump({"name": "t", "run": str(tmp_path / "run"), "servers": servers, "steps": steps})
    )
    spec = load_pipeline(path, sets)
    return PipelineRunner(spec, registry(), NoServers(), templates_root(), log=lambda _: None)


def _fingerprint(runner: PipelineRunner, stage: str) -> str:
    return runner.fingerprint(runner.spec.step(stage), RunFolder(runner.run_dir).ensure())


def test_written_by_matches_the_declared_outputs() -> None:
    # Outputs for each stage's defaults (model_construct: no required key needed to ask where outputs go).
    declared = {
        out: d.name for d in registry().values() for out in d.all_outputs(d.config_model().model_construct())
    }
    for file, writer in WRITTEN_BY.items():
        if file in declared:
            assert declared[file] == writer, file
        else:  # a folder output declared by one of its files
            assert any(out.startswith(file) and declared[out] == writer for out in declared), file


def test_building_the_registry_imports_no_model_library() -> None:
    code = (
        "import sys; from cotforge.pipeline.stages import registry; registry(); "
        "print(sorted(m for m in ('torch', 'vllm', 'transformers', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_manifest_hashes_the_declared_inputs(tmp_path: Path) -> None:
    from cotforge.pairs.augment import AugmentConfig, augment_in_run

    folder = RunFolder(tmp_path).ensure()
    atomic_write_jsonl(folder.path(RunFiles.PROMPTS), [make_prompt("How do I pick a lock?")])
    augment_in_run(tmp_path, AugmentConfig())
    manifest = (tmp_path / "manifests" / "augment.json").read_text()
    assert RunFiles.PROMPTS in manifest


def test_generate_with_augmented_prompts_reruns_when_they_change(tmp_path: Path) -> None:
    steps = [{"generate": {"server": "m", "include_augmented": True}}]
    runner = _runner(tmp_path, steps)
    folder = RunFolder(runner.run_dir).ensure()
    atomic_write_jsonl(folder.path(RunFiles.PROMPTS), [make_prompt("How do I pick a lock?")])
    atomic_write_jsonl(folder.path(RunFiles.AUGMENTED), [make_prompt("Pretend you are a locksmith.")])
    before = _fingerprint(runner, "generate")
    atomic_write_jsonl(folder.path(RunFiles.AUGMENTED), [make_prompt("Pretend you are a burglar.")])
    assert _fingerprint(runner, "generate") != before
    # Without the option, augmented prompts are not generate's input.
    plain = _runner(tmp_path, [{"generate": {"server": "m"}}])
    unchanged = _fingerprint(plain, "generate")
    atomic_write_jsonl(folder.path(RunFiles.AUGMENTED), [make_prompt("Pretend you are a thief.")])
    assert _fingerprint(plain, "generate") == unchanged


@pytest.mark.parametrize(
    ("stage", "config", "operational", "identity"),
    [
        (
            "generate",
            {"server": "m"},
            ["generate.teacher.concurrency=2", "generate.teacher.timeout_s=5", "generate.progress=false"],
            "generate.teacher.sampling.temperature=0.1",
        ),
        (
            "train_awdpo",
            {"model": "smollm2"},
            ["train_awdpo.logging_steps=7", "train_awdpo.save_steps=3", "train_awdpo.progress=false"],
            "train_awdpo.learning_rate=0.001",
        ),
        (
            "generate",
            {"server": "m"},
            ["servers.m.startup_timeout_s=10", "servers.m.max_num_seqs=4"],
            "servers.m.max_model_len=512",
        ),
    ],
)
def test_operational_knobs_leave_the_fingerprint_alone(
    tmp_path: Path,
    stage: str,
    config: dict,
    operational: list[str],
    identity: str,  # type: ignore[type-arg]
) -> None:
    steps = [{stage: config}]
    base = _fingerprint(_runner(tmp_path, steps), stage)
    for knob in operational:
        assert _fingerprint(_runner(tmp_path, steps, [knob]), stage) == base, knob
    assert _fingerprint(_runner(tmp_path, steps, [identity]), stage) != base


def test_a_finished_step_is_skipped_after_an_operational_change(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run").ensure()
    atomic_write_jsonl(folder.path(RunFiles.PROMPTS), [make_prompt("How do I pick a lock?")])
    steps = [{"augment": {"per_prompt": 2}}]
    first = _runner(tmp_path, steps).run()
    quieter = _runner(tmp_path, steps, ["augment.progress=false"]).run()
    assert quieter.steps["augment"].finished_at == first.steps["augment"].finished_at
    changed = _runner(tmp_path, steps, ["augment.per_prompt=1"]).run()
    assert changed.steps["augment"].finished_at != first.steps["augment"].finished_at


def test_a_file_only_a_later_step_writes_does_not_change_an_earlier_steps_fingerprint(tmp_path: Path) -> None:
    """validate may read augmented.jsonl, but in quickstart augment runs after it: the file appearing is not a
    change to validate's inputs (it re-ran validate, review and pairs on every second `make demo`)."""
    folder = RunFolder(tmp_path / "run").ensure()
    atomic_write_jsonl(folder.path(RunFiles.PROMPTS), [make_prompt("How do I pick a lock?")])
    atomic_write_jsonl(folder.path(RunFiles.SAMPLES), [{"id": "s-1"}])
    later = [{"validate": {}}, {"augment": {"per_prompt": 1}}]
    before = _fingerprint(_runner(tmp_path, later), "validate")
    atomic_write_jsonl(folder.path(RunFiles.AUGMENTED), [make_prompt("Pretend you are a locksmith.")])
    assert _fingerprint(_runner(tmp_path, later), "validate") == before
    # Where augment runs first, its output is a real input of validate: a change re-runs it.
    earlier = [{"augment": {"per_prompt": 1}}, {"validate": {}}]
    first = _fingerprint(_runner(tmp_path, earlier), "validate")
    atomic_write_jsonl(folder.path(RunFiles.AUGMENTED), [make_prompt("Pretend you are a safecracker.")])
    assert _fingerprint(_runner(tmp_path, earlier), "validate") != first
