"""Utility through lm-evaluation-harness: offline task YAMLs (pure) and real runs against SmolLM2 on vLLM."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import datasets
import pytest
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml

from cotforge.errors import ConfigError, StageInputError
from cotforge.evaluation.utility import UtilityConfig, flatten_results, run_utility
from cotforge.evaluation.utility_tasks import find_split_files, write_offline_tasks
from cotforge.schemas import TokenUsage
from cotforge.serving.vllm_server import VLLMServer

DATA = Path(__file__).parent / "data" / "utility"


@pytest.fixture(scope="module")
def task_index() -> dict[str, object]:
    """lm-eval's index of its stock tasks (built once: it parses every stock YAML)."""
    return TaskManager().task_index


def _served_requests(server: VLLMServer) -> float:
    """Requests the vLLM server finished, from its Prometheus counter."""
    root = server.base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(v)
        for v in re.findall(
            r'^vllm:request_success_total\{[^}]*model_name="smollm2"[^}]*\} (\S+)$', text, re.M
        )
    )


@pytest.mark.unit
def test_offline_yamls_keep_stock_prompt_and_metrics_and_read_local_files(
    task_index: dict[str, object], tmp_path: Path
) -> None:
    overridden = write_offline_tasks(
        task_index, ["gsm8k", "mmlu", "arc_easy"], DATA, tmp_path, num_fewshot=None
    )
    assert overridden == ["gsm8k", "mmlu"]  # arc_easy has no local folder: left to its stock config

    gsm8k = load_yaml(tmp_path / "gsm8k.yaml", resolve_func=False)
    assert gsm8k["dataset_path"] == "json" and gsm8k["dataset_name"] is None
    files = gsm8k["dataset_kwargs"]["data_files"]
    assert files == {
        "test": [str((DATA / "gsm8k/test.jsonl").resolve())],
        "train": [str((DATA / "gsm8k/train.jsonl").resolve())],
    }
    # The stock task's prompt, filters and metric come through the include unchanged.
    assert gsm8k["doc_to_text"] == "Question: {{question}}\nAnswer:"
    assert [f["name"] for f in gsm8k["filter_list"]] == ["strict-match", "flexible-extract"]
    assert gsm8k["metric_list"][0]["metric"] == "exact_match" and gsm8k["num_fewshot"] == 5

    group = load_yaml(tmp_path / "mmlu.yaml", resolve_func=False)
    assert group["group"] == "mmlu"
    assert group["task"] == ["mmlu_elementary_mathematics", "mmlu_high_school_geography"]
    assert group["aggregate_metric_list"] == [{"metric": "acc", "weight_by_size": True}]
    leaf = load_yaml(tmp_path / "mmlu_high_school_geography.yaml", resolve_func=False)
    assert leaf["output_type"] == "multiple_choice" and leaf["fewshot_split"] == "dev" and leaf["tag"] == []
    test_file = Path(leaf["dataset_kwargs"]["data_files"]["test"][0])
    rows = [json.loads(line) for line in test_file.read_text().splitlines()]
    assert len(rows) == 4 and {r["subject"] for r in rows} == {"high_school_geography"}
    assert all(isinstance(r["answer"], int) and len(r["choices"]) == 4 for r in rows)


@pytest.mark.unit
def test_missing_fewshot_split_is_unset_at_zero_shots_and_an_error_with_shots(
    task_index: dict[str, object], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "gsm8k" / "main").mkdir(parents=True)
    (data / "gsm8k" / "main" / "test.jsonl").write_text((DATA / "gsm8k/test.jsonl").read_text())
    staging = tmp_path / "staging"
    staging.mkdir()
    write_offline_tasks(task_index, ["gsm8k"], data, staging, num_fewshot=0)
    cfg = load_yaml(staging / "gsm8k.yaml", resolve_func=False)
    assert cfg["dataset_kwargs"]["data_files"] == {"test": [str((data / "gsm8k/main/test.jsonl").resolve())]}
    assert cfg["training_split"] is None and cfg["fewshot_split"] is None
    with pytest.raises(
        StageInputError, match=r"gsm8k: few-shot examples come from split 'train'.*num_fewshot: 0"
    ):
        write_offline_tasks(task_index, ["gsm8k"], data, staging, num_fewshot=None)  # stock: 5 shots


@pytest.mark.unit
def test_split_files_prefer_the_config_folder_and_take_hub_shards(tmp_path: Path) -> None:
    (tmp_path / "main").mkdir()
    shards = [tmp_path / "main" / f"test-0000{i}-of-00002.parquet" for i in range(2)]
    for shard in shards:
        shard.write_bytes(b"")
    (tmp_path / "test.jsonl").write_text("{}\n")
    assert find_split_files([tmp_path / "main", tmp_path], "test") == shards
    assert find_split_files([tmp_path / "none", tmp_path], "test") == [tmp_path / "test.jsonl"]
    assert find_split_files([tmp_path], "dev") == []


@pytest.mark.unit
def test_flatten_results_names_filters_keeps_stderr_and_counts() -> None:
    raw = {
        "results": {
            "gsm8k": {
                "alias": "gsm8k",
                "exact_match,strict-match": 0.25,
                "exact_match_stderr,strict-match": 0.1,
                "exact_match,flexible-extract": 0.5,
            },
            "mmlu": {"acc,none": 0.5, "acc_stderr,none": "N/A", "sample_len": 8},
        },
        "n-samples": {"gsm8k": {"original": 8, "effective": 4}},
    }
    assert flatten_results(raw) == {
        "gsm8k": {
            "exact_match/strict-match": 0.25,
            "exact_match_stderr/strict-match": 0.1,
            "exact_match/flexible-extract": 0.5,
            "n_samples": 4.0,
        },
        "mmlu": {"acc": 0.5, "n_samples": 8.0},
    }


@pytest.mark.integration
def test_gsm8k_and_mmlu_run_offline_through_the_harness(
    smollm2_vllm_server: VLLMServer, smollm2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    assert datasets.config.HF_HUB_OFFLINE  # no Hub access for the whole run
    config = UtilityConfig(
        tasks=["gsm8k", "mmlu"],
        data_dir=str(DATA),
        limit=4,
        num_fewshot=1,
        tokenizer=str(smollm2_dir),
        max_gen_toks=48,
    )
    before = _served_requests(smollm2_vllm_server)
    usages: list[TokenUsage] = []
    results = run_utility(
        config,
        base_url=smollm2_vllm_server.base_url,
        model="smollm2",
        output_dir=tmp_path,
        on_usage=usages.append,
    )
    served = _served_requests(smollm2_vllm_server) - before
    # Every response the harness got is counted (for the usage ledger and the eval manifest's cost).
    assert len(usages) == served and all(u.prompt_tokens > 0 for u in usages)

    assert set(results) == {"gsm8k", "mmlu", "mmlu_elementary_mathematics", "mmlu_high_school_geography"}
    for name in ("exact_match/strict-match", "exact_match/flexible-extract"):
        assert 0.0 <= results["gsm8k"][name] <= 1.0
    assert results["gsm8k"]["n_samples"] == 4
    for subject in ("mmlu_elementary_mathematics", "mmlu_high_school_geography"):
        assert 0.0 <= results[subject]["acc"] <= 1.0 and results[subject]["n_samples"] == 4
    assert 0.0 <= results["mmlu"]["acc"] <= 1.0 and results["mmlu"]["n_samples"] == 8
    # One chat request per GSM8K item; one /v1/completions request per (MMLU item, choice) pair.
    assert served == 4 + 2 * 4 * 4

    chat = json.loads((tmp_path / "local-chat-completions" / "results.json").read_text())
    assert (
        chat["results"]["gsm8k"]["exact_match,strict-match"] == results["gsm8k"]["exact_match/strict-match"]
    )
    completions = tmp_path / "local-completions"
    samples = (completions / "samples_mmlu_high_school_geography.jsonl").read_text().splitlines()
    assert len(samples) == 4 and json.loads(samples[0])["doc"]["subject"] == "high_school_geography"
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert "sk-test-not-a-real-key" not in written


@pytest.mark.integration
def test_task_without_local_data_offline_is_a_clear_error(
    smollm2_vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    url = smollm2_vllm_server.base_url
    with pytest.raises(
        StageInputError, match=r"utility task arc_easy: its data could not be loaded.*arc_easy/"
    ):
        run_utility(
            UtilityConfig(tasks=["arc_easy"], data_dir=str(DATA), limit=2),
            base_url=url,
            model="smollm2",
            output_dir=tmp_path,
        )
    with pytest.raises(StageInputError, match=r"utility task gsm8k: .*set utility data_dir"):
        run_utility(
            UtilityConfig(tasks=["gsm8k"], limit=2), base_url=url, model="smollm2", output_dir=tmp_path
        )
    no_tokenizer = UtilityConfig(tasks=["mmlu"], data_dir=str(DATA), limit=1)
    with pytest.raises(ConfigError, match=r"log-likelihood tasks .* need the model's tokenizer"):
        run_utility(no_tokenizer, base_url=url, model="smollm2", output_dir=tmp_path)
    with pytest.raises(ConfigError, match="'no_such_task' is not an lm-eval task"):
        run_utility(UtilityConfig(tasks=["no_such_task"]), base_url=url, model="smollm2", output_dir=tmp_path)
