"""Pipeline files and the runner: validation, overrides, skip-when-unchanged, resume, --from/--until."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.pipeline.runner import PipelineRunner
from cotforge.pipeline.spec import PipelineError, apply_overrides, load_pipeline
from cotforge.pipeline.stages import registry
from cotforge.templates import templates_root

runner = CliRunner()


class NoServers:
    def url(self, name, spec):  # type: ignore[no-untyped-def]
        raise AssertionError("no step here needs a server")

    def release(self, name: str) -> None: ...

    def close(self) -> None: ...


def write_pipeline(tmp_path: Path, steps: list[dict], **extra: object) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "run": str(tmp_path / "run"), "steps": steps, **extra}))
    return path


def make_runner(path: Path, overrides: list[str] | None = None) -> PipelineRunner:
    spec = load_pipeline(path, overrides)
    return PipelineRunner(
        spec=spec,
        registry=registry(),
        servers=NoServers(),
        templates_root=templates_root(),
        log=lambda _: None,
    )


@pytest.mark.unit
def test_overrides_address_steps_by_stage_and_keep_types() -> None:
    data = {"name": "x", "run": "r", "steps": [{"pairs": {"gamma": 0.5}}, {"ingest": None}]}
    out = apply_overrides(
        data, ["pairs.gamma=0.3", "pairs.sources=[judge]", "ingest.bundled=true", "run=elsewhere"]
    )
    assert out["steps"][0]["pairs"] == {"gamma": 0.3, "sources": ["judge"]}
    assert out["steps"][1]["ingest"] == {"bundled": True}
    assert out["run"] == "elsewhere" and data["run"] == "r"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("sample.k=3", "'sample' is not a step of this pipeline (its steps: pairs, ingest)"),
        ("nosuch.k=3", "add the step to the file, or leave this --set out"),
        ("pair.gamma=0.3", "did you mean `pairs`?"),
        ("servrs.x=1", "did you mean `servers`?"),
    ],
)
def test_a_set_for_a_step_the_pipeline_lacks_names_its_steps(item: str, message: str) -> None:
    data = {"name": "x", "run": "r", "steps": [{"pairs": {"gamma": 0.5}}, {"ingest": None}]}
    with pytest.raises(PipelineError) as info:
        apply_overrides(data, [item], pipeline=True)
    assert message in str(info.value) and str(info.value).startswith(f"--set {item}:")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("steps", "extra", "message"),
    [
        ([{"pairs": {"gama": 0.3}}], {}, "step pairs: gama: unknown key (did you mean `gamma`?)"),
        ([{"pairs": {"zzz": 0.3}}], {}, "step pairs: zzz: unknown key (check the spelling"),
        ([{"pairs": {"gamma": 3}}], {}, "step pairs: gamma: Input should be less than or equal to 1"),
        ([{"nonsense": {}}], {}, "unknown stage(s) ['nonsense']"),
        ([{"pairs": {}}, {"pairs": {}}], {}, "each stage may appear once"),
        ([{"ingest": {"bundled": True}}], {"servrs": {}}, "servrs: unknown key"),
        ([{"pairs": {}, "ingest": {}}], {}, "step 1 must map one stage name"),
    ],
)
def test_bad_pipelines_fail_before_running_with_the_key_named(
    tmp_path: Path,
    steps: list[dict],
    extra: dict,
    message: str,  # type: ignore[type-arg]
) -> None:
    path = write_pipeline(tmp_path, steps, **extra)
    with pytest.raises(PipelineError) as info:
        make_runner(path)
    assert message in str(info.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.unit
def test_unchanged_steps_are_skipped_and_changes_cascade(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, [{"ingest": {"bundled": True, "limit_per_source": 4}}, {"augment": {}}])
    state = make_runner(path).run()
    assert {k: v.status for k, v in state.steps.items()} == {"ingest": "completed", "augment": "completed"}
    first = {k: v.finished_at for k, v in state.steps.items()}
    again = make_runner(path).run()
    assert {k: v.finished_at for k, v in again.steps.items()} == first
    # A changed ingest config re-runs ingest; its output changes, so augment (an input consumer) re-runs too.
    changed = make_runner(path, ["ingest.limit_per_source=5"]).run()
    assert all(changed.steps[k].finished_at != first[k] for k in first)
    # Only a later step's config changed: the earlier one is skipped.
    last = make_runner(path, ["ingest.limit_per_source=5", "augment.per_prompt=1"]).run()
    assert last.steps["ingest"].finished_at == changed.steps["ingest"].finished_at
    assert last.steps["augment"].finished_at != changed.steps["augment"].finished_at


@pytest.mark.unit
def test_edited_output_and_interrupted_step_are_rerun(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, [{"ingest": {"bundled": True, "limit_per_source": 3}}, {"augment": {}}])
    state = make_runner(path).run()
    run_dir = tmp_path / "run"
    (run_dir / "augmented.jsonl").write_text("edited by hand\n")
    again = make_runner(path).run()
    assert again.steps["augment"].finished_at != state.steps["augment"].finished_at
    # Simulate a kill mid-step: the state says running.
    saved = json.loads((run_dir / "manifests" / "pipeline.json").read_text())
    saved["steps"]["ingest"]["status"] = "running"
    (run_dir / "manifests" / "pipeline.json").write_text(json.dumps(saved))
    resumed = make_runner(path).run()
    assert resumed.steps["ingest"].status == "completed"
    assert resumed.steps["ingest"].finished_at != again.steps["ingest"].finished_at


@pytest.mark.unit
def test_from_and_until_select_steps(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, [{"ingest": {"bundled": True, "limit_per_source": 2}}, {"augment": {}}])
    state = make_runner(path).run(until="ingest")
    assert list(state.steps) == ["ingest"]
    state = make_runner(path).run(start="augment")
    assert list(state.steps) == ["ingest", "augment"]
    with pytest.raises(PipelineError, match="no such step"):
        make_runner(path).run(start="generate")


def test_run_cli_reports_bad_pipeline_and_runs_a_good_one(tmp_path: Path) -> None:
    bad = write_pipeline(tmp_path, [{"pairs": {"gama": 1}}])
    result = runner.invoke(app, ["run", str(bad)])
    assert result.exit_code == 1 and "gama: unknown key" in result.output
    good = write_pipeline(tmp_path, [{"ingest": {"bundled": True, "limit_per_source": 2}}])
    result = runner.invoke(app, ["run", str(good), "--run", str(tmp_path / "other")])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "other" / "prompts.jsonl").read_text().splitlines()) == 6


@pytest.mark.unit
def test_a_step_failing_on_a_full_disk_reports_its_own_file_not_the_pipeline_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by `make chaos`: the state file refused by the same full disk hid which output could not be written."""
    import resource
    import signal

    from cotforge.errors import OutputWriteError

    path = write_pipeline(tmp_path, [{"ingest": {"bundled": True, "limit_per_source": 3}}, {"augment": {}}])
    make_runner(path).run(until="ingest")
    run_dir = tmp_path / "run"
    augmented = run_dir / "augmented.jsonl"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def stage_on_a_full_disk(self, step, url_of):  # type: ignore[no-untyped-def]
        # The disk fills while the stage writes: from here on no file can grow past a few bytes.
        resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))
        raise OutputWriteError(f"{augmented}: could not write (No space left on device)", file=augmented)

    monkeypatch.setattr(PipelineRunner, "_call", stage_on_a_full_disk)
    try:
        with pytest.raises(OutputWriteError) as caught:
            make_runner(path).run(start="augment")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert caught.value.file == str(augmented)
    state = json.loads((run_dir / "manifests" / "pipeline.json").read_text())
    assert state["steps"]["augment"]["status"] == "running"  # the next run resumes it
