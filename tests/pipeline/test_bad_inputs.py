"""Bad pipeline files, state and side files end in one clear line, never a traceback or a hang."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.errors import CotforgeError
from cotforge.llm.cache import RequestCache
from cotforge.pipeline.spec import PipelineError, load_pipeline
from cotforge.runfolder import RunFiles

pytestmark = pytest.mark.unit
runner = CliRunner()


def _pipeline(tmp_path: Path, run: Path, steps: list[dict]) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "run": str(run), "steps": steps}))
    return path


def _one_line_error(result: object, *needles: str) -> None:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 1, output  # type: ignore[attr-defined]
    assert "Traceback" not in output and all(n in output for n in needles), output


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    lines += ["name: bomb", "run: r", "steps:", "  - generate: {teacher: {model: m, engine_args: {x: *a9}}}"]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PipelineError, match="aliases expanded"):
        load_pipeline(path)
    _one_line_error(runner.invoke(app, ["run", str(path), "--check"]), "bomb.yaml", "aliases")


def test_deeply_nested_pipeline_yaml(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\nrun: r\nsteps: " + "[" * 10_000 + "]" * 10_000 + "\n")
    _one_line_error(runner.invoke(app, ["run", str(path), "--check"]), "deep.yaml", "nested more than")


def test_pipeline_argument_that_is_a_folder(tmp_path: Path) -> None:
    _one_line_error(runner.invoke(app, ["run", str(tmp_path)]), str(tmp_path), "is a folder")


def test_check_with_an_unknown_from_step_fails(tmp_path: Path) -> None:
    path = _pipeline(tmp_path, tmp_path / "run", [{"ingest": {"bundled": True}}])
    _one_line_error(
        runner.invoke(app, ["run", str(path), "--check", "--from", "bogus"]), "bogus", "no such step"
    )


def test_corrupt_pipeline_state_is_named_and_force_gets_past_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    path = _pipeline(tmp_path, run, [{"ingest": {"bundled": True, "limit_per_source": 1}}])
    assert runner.invoke(app, ["run", str(path)]).exit_code == 0
    state = run / "manifests" / "pipeline.json"
    state.write_text('{"name": 3, "steps": ')
    _one_line_error(runner.invoke(app, ["run", str(path)]), str(state), "--force")
    result = runner.invoke(app, ["run", str(path), "--force"])
    assert result.exit_code == 0, result.output
    assert json.loads(state.read_text())["steps"]["ingest"]["status"] == "completed"
    assert (run / "manifests" / "pipeline.json.corrupt").exists()


def test_pipeline_step_without_its_inputs_fails_and_is_not_completed(
    finished_run: Path, tmp_path: Path
) -> None:
    path = _pipeline(tmp_path, finished_run, [{"ingest": {"bundled": True}}, {"pairs": {}}])
    before = (finished_run / RunFiles.PAIRS).read_bytes()
    (finished_run / RunFiles.JUDGMENTS).unlink()
    result = runner.invoke(app, ["run", str(path), "--from", "pairs", "--until", "pairs"])
    _one_line_error(result, "judgments.jsonl", "`judge`")
    state = json.loads((finished_run / "manifests" / "pipeline.json").read_text())
    assert state["steps"]["pairs"]["status"] == "failed"
    assert (finished_run / RunFiles.PAIRS).read_bytes() == before


def test_corrupt_cache_is_named_with_how_to_rebuild(tmp_path: Path) -> None:
    path = tmp_path / RunFiles.CACHE
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CotforgeError, match=r"cache\.sqlite.*move it aside") as info:
        RequestCache(path)
    assert info.value.file == str(path)
    assert isinstance(info.value.__context__, sqlite3.DatabaseError)


def test_invalid_category_map_yaml(tmp_path: Path) -> None:
    source = tmp_path / "p.jsonl"
    source.write_text('{"prompt": "How do I pick a lock?", "label": "crime"}\n')
    bad = tmp_path / "map.yaml"
    bad.write_text("crime: [unclosed\n")
    result = runner.invoke(
        app,
        [
            "ingest",
            str(source),
            "--run",
            str(tmp_path / "run"),
            "--kind",
            "safety",
            "--category-map",
            str(bad),
        ],
    )
    _one_line_error(result, "map.yaml", "not valid YAML")


def test_jsonl_row_nested_too_deep_is_rejected_and_the_rest_kept(tmp_path: Path) -> None:
    source = tmp_path / "p.jsonl"
    rows = [
        '{"prompt": "How do I bake bread at home?"}',
        '{"prompt": ' + "[" * 10_000 + "]" * 10_000 + "}",
        '{"prompt": "What is the capital of France?"}',
    ]
    source.write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    result = runner.invoke(app, ["ingest", str(source), "--run", str(run), "--kind", "utility"])
    assert result.exit_code == 0, result.output
    assert len((run / RunFiles.PROMPTS).read_text().splitlines()) == 2
    rejects = [json.loads(line) for line in (run / RunFiles.PROMPT_REJECTS).read_text().splitlines()]
    assert [(r["line"], r["reasons"]) for r in rejects] == [(2, ["too_deep"])]
