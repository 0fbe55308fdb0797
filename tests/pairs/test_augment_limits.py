"""A variant longer than a prompt may be is a reject with its reason, never a crash; the rest still lands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.ingest.rows import IngestConfig
from cotforge.ingest.run import ingest_into_run
from cotforge.runfolder import RunFiles, read_jsonl
from cotforge.schemas import MAX_PROMPT_CHARS, PromptRecord, RejectRecord

pytestmark = pytest.mark.unit

OFFLINE = ["roleplay", "base64", "rot13", "leetspeak", "empty_think"]


def _run(tmp_path: Path, *texts: str) -> Path:
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts), encoding="utf-8")
    run = tmp_path / "run"
    ingest_into_run(run, IngestConfig(sources=[str(src)], kind="safety"))
    return run


@pytest.mark.parametrize(
    ("chars", "too_long"),
    [
        (6_500, {"base64"}),  # base64 is a third longer than its parent
        (MAX_PROMPT_CHARS - 10, set(OFFLINE)),  # any wrapper pushes it over
    ],
)
def test_variants_over_the_prompt_limit_are_rejects_naming_prompt_and_tactic(
    tmp_path: Path, chars: int, too_long: set[str]
) -> None:
    long_text = ("Explain how to pick a lock. " * 400)[:chars].strip()
    run = _run(tmp_path, long_text, "How do I hotwire a car?")
    result = CliRunner().invoke(
        app, ["augment", "--run", str(run), "--set", f"tactics={json.dumps(OFFLINE)}"]
    )
    assert result.exit_code == 0, result.output
    prompts = {p.text: p.id for p in read_jsonl(run / RunFiles.PROMPTS, PromptRecord)}
    long_id = prompts[long_text]
    variants = list(read_jsonl(run / RunFiles.AUGMENTED, PromptRecord))
    assert {v.tactic for v in variants if v.parent_id == long_id} == set(OFFLINE) - too_long
    assert {v.tactic for v in variants if v.parent_id != long_id} == set(OFFLINE)
    assert all(len(v.text) <= MAX_PROMPT_CHARS for v in variants)
    rejects = list(read_jsonl(run / RunFiles.AUGMENT_REJECTS, RejectRecord))
    assert {r.raw["tactic"] for r in rejects} == too_long
    assert all(r.reasons == ["variant_too_long"] and r.record_id == long_id for r in rejects)
    assert all(f"over the {MAX_PROMPT_CHARS}" in r.message for r in rejects)
    manifest = json.loads((run / "manifests" / "augment.json").read_text())
    assert manifest["status"] == "completed" and manifest["counts"]["too_long"] == len(too_long)
    assert manifest["counts"]["failed"] == 0
