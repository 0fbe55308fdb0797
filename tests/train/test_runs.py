"""Real training runs through the stage edges: tiny model (AW-DPO, SFT, LoRA, resume, 2 processes) and SmolLM2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import load_manifest
from cotforge.schemas import RejectRecord
from cotforge.train import AWDPOTrainConfig, LoRASettings, SFTTrainConfig, train_awdpo, train_sft
from cotforge.train.awdpo_config import AWDPOConfig

FAST = {"progress": False, "learning_rate": 1e-3, "batch_size": 4}


def metrics(output_dir: Path) -> list[dict[str, Any]]:
    lines = (output_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [row for row in map(json.loads, lines) if "loss" in row]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(next(folder.glob("*.safetensors"))))


@pytest.mark.integration
def test_awdpo_20_steps_on_the_tiny_model(pairs_run: Path, tiny_model_dir: Path) -> None:
    result = train_awdpo(pairs_run, AWDPOTrainConfig(model=str(tiny_model_dir), max_steps=20, **FAST))
    out = Path(result.output_dir)
    assert out == pairs_run / "models" / "awdpo" and result.saved == "full" and result.steps == 20
    rows = metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 21))
    for key in ("rewards/margins_reasoning", "rewards/margins_answer", "weights/w_rs", "loss/answer"):
        assert all(key in r for r in rows)
    assert rows[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at step 1
    assert rows[-1]["loss"] < 0.3 and rows[-1]["rewards/margins"] > 1.0  # it learned the preference
    assert rows[-1]["rewards/accuracies_reasoning"] == 1.0
    # Mean batch weights vary with the pairs drawn: the per-pair weights are flowing into the batches.
    assert len({round(r["weights/w_rs"], 4) for r in rows}) > 1
    trained, start = weights(out), weights(tiny_model_dir)
    assert any(not torch.equal(trained[k], start[k]) for k in start)
    manifest = load_manifest(RunFolder(pairs_run), "train-awdpo")
    assert manifest is not None and manifest.status == "completed"
    assert manifest.counts["steps"] == 20 and manifest.counts["trained_pairs"] == 12
    assert manifest.counts["dropped"] == 0 and manifest.counts["straddled_tokens"] == 0
    assert set(manifest.inputs) == {RunFiles.PAIRS} and "models/awdpo/metrics.jsonl" in manifest.outputs
    assert manifest.versions["trl"].startswith("1.16") and manifest.config["aggregation"] == "loss"
    assert manifest.extra["final_metrics"]["step"] == 20 and manifest.extra["precision"] == "fp32"
    assert manifest.extra["policy"]["kind"] == "full" and manifest.extra["policy"]["added_tokens"] == []
    assert (out / "tokenizer.json").exists() and not (pairs_run / RunFiles.TRAIN_AWDPO_REJECTS).exists()
    # The AW-DPO options are saved with the training arguments, as TRL's own variants' are.
    args = torch.load(out / "training_args.bin", weights_only=False)
    assert isinstance(args, AWDPOConfig) and args.aggregation == "loss" and args.alpha is None


@pytest.mark.integration
def test_short_sft_run_on_the_tiny_model(sft_run: Path, tiny_model_dir: Path) -> None:
    folder = RunFolder(sft_run)
    with folder.path(RunFiles.ACCEPTED).open("a", encoding="utf-8") as fh:
        orphan = json.loads(folder.path(RunFiles.ACCEPTED).read_text().splitlines()[0])
        fh.write(json.dumps({**orphan, "id": "s-orphan", "prompt_id": "p-missing"}) + "\n")
    result = train_sft(sft_run, SFTTrainConfig(model=str(tiny_model_dir), max_steps=6, **FAST))
    rows = metrics(Path(result.output_dir))
    assert len(rows) == 6 and rows[-1]["loss"] < rows[0]["loss"]
    assert result.examples == 9 and result.rejects == 1
    (reject,) = folder.read(RunFiles.TRAIN_SFT_REJECTS, RejectRecord)
    assert reject.reasons == ["prompt_not_found"] and reject.line == 10 and reject.record_id == "s-orphan"
    manifest = load_manifest(folder, "train-sft")
    assert manifest is not None and manifest.status == "completed"
    assert manifest.counts["trained_samples"] == 9 and RunFiles.ACCEPTED in manifest.inputs
    assert (Path(result.output_dir) / "model.safetensors").exists()


@pytest.mark.integration
def test_lora_sft_then_awdpo_from_the_adapter(sft_run: Path, tiny_model_dir: Path, pair_maker: Any) -> None:
    RunFolder(sft_run).write(RunFiles.PAIRS, pair_maker(8))
    lora = LoRASettings(r=4, alpha=8)
    sft = train_sft(sft_run, SFTTrainConfig(model=str(tiny_model_dir), max_steps=3, lora=lora, **FAST))
    adapter = Path(sft.output_dir)
    assert sft.saved == "adapter" and (adapter / "adapter_config.json").exists()
    assert not (adapter / "model.safetensors").exists()
    dpo = train_awdpo(sft_run, AWDPOTrainConfig(model=str(adapter), max_steps=3, lora=lora, **FAST))
    manifest = load_manifest(RunFolder(sft_run), "train-awdpo")
    assert manifest is not None and manifest.extra["policy"]["kind"] == "adapter_merged"
    assert manifest.extra["policy"]["base_model"] == str(tiny_model_dir)
    assert dpo.saved == "adapter" and len(metrics(Path(dpo.output_dir))) == 3
    trained = weights(Path(dpo.output_dir))
    assert trained and all("lora_" in key for key in trained)  # only adapter weights were saved


class CrashAt(TrainerCallback):
    """Simulates a kill right after a given step was logged (and before its checkpoint)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_log(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step == self.step:
            raise KeyboardInterrupt("simulated crash")


@pytest.mark.integration
def test_a_crashed_run_resumes_without_repeating_or_dropping_steps(
    pairs_run: Path, tiny_model_dir: Path
) -> None:
    config = AWDPOTrainConfig(model=str(tiny_model_dir), max_steps=8, save_steps=2, **FAST)
    with pytest.raises(KeyboardInterrupt):
        train_awdpo(pairs_run, config, callbacks=[CrashAt(5)])
    manifest = load_manifest(RunFolder(pairs_run), "train-awdpo")
    assert manifest is not None and manifest.status == "failed"
    out = pairs_run / "models" / "awdpo"
    assert [r["step"] for r in metrics(out)] == [1, 2, 3, 4, 5]
    result = train_awdpo(pairs_run, config.model_copy(update={"resume": True}))
    assert [r["step"] for r in metrics(out)] == list(
        range(1, 9)
    )  # 5 was after the last checkpoint: redone once
    manifest = load_manifest(RunFolder(pairs_run), "train-awdpo")
    assert manifest is not None and manifest.status == "completed"
    assert manifest.extra["resumed_from"].endswith("checkpoint-4") and result.steps == 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_two_process_data_parallel_run(pairs_run: Path, tiny_model_dir: Path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
        "-m", "cotforge", "train", "awdpo", "--run-dir", str(pairs_run), "--model", str(tiny_model_dir),
        "--max-steps", "3", "--set", "batch_size=2", "--set", "learning_rate=1e-3", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = load_manifest(RunFolder(pairs_run), "train-awdpo")
    assert manifest is not None and manifest.status == "completed" and manifest.extra["world_size"] == 2
    rows = metrics(pairs_run / "models" / "awdpo")
    # 12 pairs, 2 per process, 2 processes: 3 optimizer steps per epoch.
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["epoch"] == pytest.approx(1.0)
    assert done.stdout.count("train awdpo") == 1  # one summary, from rank 0


@pytest.mark.integration
def test_awdpo_few_steps_on_smollm2(pairs_run: Path, smollm2_dir: Path) -> None:
    config = AWDPOTrainConfig(
        model=str(smollm2_dir), max_steps=2, batch_size=2, max_length=256, learning_rate=1e-5, progress=False
    )
    result = train_awdpo(pairs_run, config)
    manifest = load_manifest(RunFolder(pairs_run), "train-awdpo")
    assert manifest is not None and manifest.status == "completed" and result.steps == 2
    # SmolLM2 lacks <think>/</think>: they were added as atomic tokens, so no token straddles the boundary.
    assert manifest.extra["policy"]["added_tokens"] == ["<think>", "</think>"]
    assert manifest.extra["policy"]["vocab_resized"] == [49152, 49154]
    assert manifest.counts["straddled_tokens"] == 0 and manifest.counts["trained_pairs"] == 12
    rows = metrics(Path(result.output_dir))
    assert len(rows) == 2 and all(r["loss"] == r["loss"] for r in rows)  # finite, not NaN
    assert rows[-1]["rewards/margins"] > 0
