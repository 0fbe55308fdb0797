"""`cotforge train awdpo` on a small run folder: outputs, manifest, rejects with lines and reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import load_manifest
from cotforge.schemas import RejectRecord


@pytest.mark.integration
def test_cli_awdpo_on_a_run_folder(pairs_run: Path, tiny_model_dir: Path, pair_maker: Any) -> None:
    folder = RunFolder(pairs_run)
    (long_pair,) = pair_maker(1)
    steps = [f"Step {i} considers another aspect of why the request is harmful." for i in range(40)]
    reasoning = "<think>\n" + "\n".join(steps) + "\n</think>"
    chosen = f"{reasoning}\n\nI can't help with that."
    long_pair = long_pair.model_copy(
        update={
            "id": "pair-long",
            "chosen": chosen,
            "chosen_spans": long_pair.chosen_spans.model_copy(
                update={
                    "reasoning_end": len(reasoning),
                    "answer_start": len(reasoning),
                    "answer_end": len(chosen),
                }
            ),
        }
    )
    with folder.path(RunFiles.PAIRS).open("a", encoding="utf-8") as fh:
        fh.write('{"id": "broken", "prompt": "no spans"}\n')  # line 13: not a PreferencePair
        fh.write(long_pair.model_dump_json() + "\n")  # line 14: its answer does not fit in 256 tokens
    result = CliRunner().invoke(
        app,
        [
            "train", "awdpo", "--run", str(pairs_run), "--model", str(tiny_model_dir),
            "--max-steps", "3", "--set", "batch_size=4", "--set", "learning_rate=1e-3", "--set", "max_length=256",
            "--aggregation", "reward", "--set", "beta=0.2", "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "train awdpo (reward)" in result.output and "rejects" in result.output
    out = pairs_run / "models" / "awdpo"
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert len([json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]) >= 3
    rejects = {r.line: r for r in folder.read(RunFiles.TRAIN_AWDPO_REJECTS, RejectRecord)}
    assert set(rejects) == {13, 14}
    assert rejects[13].reasons == ["invalid_record"] and "PreferencePair" in rejects[13].message
    assert rejects[14].reasons == ["truncated_answer"] and rejects[14].record_id == "pair-long"
    assert "max_length=256" in rejects[14].message
    manifest = load_manifest(folder, "train-awdpo")
    assert manifest is not None and manifest.status == "completed"
    assert manifest.config["aggregation"] == "reward" and manifest.config["beta"] == 0.2
    assert manifest.counts["invalid_lines"] == 1 and manifest.counts["dropped"] == 1
    assert manifest.counts["trained_pairs"] == 12 and manifest.counts["steps"] == 3
    assert manifest.extra["dropped"][0]["code"] == "truncated_answer"

    # A run folder without pairs: a clear error naming the file, exit 1.
    empty = pairs_run.parent / "empty"
    empty.mkdir()
    failed = CliRunner().invoke(app, ["train", "awdpo", "--run", str(empty), "--model", str(tiny_model_dir)])
    assert failed.exit_code == 1 and "pairs.jsonl" in failed.output and "missing" in failed.output
    # A run folder that does not exist at all: a different, equally clear error.
    absent = CliRunner().invoke(
        app, ["train", "awdpo", "--run", str(empty / "no"), "--model", str(tiny_model_dir)]
    )
    assert absent.exit_code == 1 and "does not exist" in absent.output


@pytest.mark.integration
def test_cli_sft_from_a_config_file_with_set_overrides(sft_run: Path, tiny_model_dir: Path) -> None:
    config = sft_run / "sft.yaml"
    config.write_text(
        f"model: {tiny_model_dir}\nlearning_rate: 1.0e-3\nmax_steps: 5\nbatch_size: 2\nprogress: false\n"
        "lora: {r: 4}\n"
    )
    result = CliRunner().invoke(
        app,
        ["train", "sft", "--run", str(sft_run), "--config", str(config), "--set", "max_steps=1",
         "--set", "lora=null"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = load_manifest(RunFolder(sft_run), "train-sft")
    assert manifest is not None and manifest.status == "completed"
    # --set won over the file (max_steps, lora); the file over the defaults (learning_rate, batch_size).
    assert manifest.config["max_steps"] == 1 and manifest.counts["steps"] == 1
    assert manifest.config["lora"] is None and manifest.extra["saved"] == "full"
    assert manifest.config["learning_rate"] == 1e-3 and manifest.config["batch_size"] == 2
    assert (sft_run / "models" / "sft" / "model.safetensors").exists()
