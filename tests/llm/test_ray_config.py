"""Ray executor settings and the vLLM engine processor's rows, without a cluster (no GPU is needed to check the
engine path's configuration; running it needs one)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from cotforge.llm import ChatRequest, LLMConfig
from cotforge.llm.chat import request_to_dict
from cotforge.llm.ray_executor import gpus_per_replica
from cotforge.llm.ray_workers import engine_result, engine_row, vllm_engine_processor_config, worker_config
from cotforge.schemas import SamplingParams

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("ray", "message"),
    [
        ({"address": "/tmp/cluster.yaml"}, "not a Ray address"),
        ({"address": "head-node"}, "not a Ray address"),
        ({"batch_size": 0}, "greater than or equal to 1"),
        ({"replicas": 0}, "greater than or equal to 1"),
        ({"num_gpus": -1}, "greater than or equal to 0"),
        ({"adress": "auto"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_ray_settings_are_refused_with_the_key_named(ray: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LLMConfig(model="m", base_urls=["http://127.0.0.1:1/v1"], executor="ray", ray=ray)


def test_batch_mode_and_the_ray_executor_do_not_mix() -> None:
    with pytest.raises(ValidationError, match="executor: local"):
        LLMConfig(model="m", base_urls=["http://127.0.0.1:1/v1"], executor="ray", mode="batch")


def test_workers_share_the_concurrency_and_run_the_local_executor() -> None:
    config = LLMConfig(
        model="m", base_urls=["http://h:1/v1"], concurrency=10, executor="ray", ray={"replicas": 3}
    )
    worker = worker_config(config)
    assert worker.executor == "local" and worker.concurrency == 4  # ceil(10 / 3): the ceiling is kept
    assert gpus_per_replica(config) == 0.0


def test_engine_processor_config_takes_parallelism_from_the_model_config() -> None:
    config = LLMConfig(
        model="/models/big",
        backend="vllm",
        executor="ray",
        engine_args={"tensor_parallel_size": 4, "pipeline_parallel_size": 2, "max_model_len": 8192},
        ray={"replicas": 3, "batch_size": 32},
    )
    assert gpus_per_replica(config) == 8.0
    processor = vllm_engine_processor_config(config)
    assert (
        processor.model_source == "/models/big" and processor.concurrency == 3 and processor.batch_size == 32
    )
    assert processor.engine_kwargs["tensor_parallel_size"] == 4
    assert processor.engine_kwargs["pipeline_parallel_size"] == 2
    assert processor.engine_kwargs["structured_outputs_config"]["backend"] == "guidance"
    assert processor.should_continue_on_error  # a failed request is its row's error, not the job's


def test_engine_rows_carry_seed_schema_and_prefill_and_results_get_a_finish_reason() -> None:
    sampling = SamplingParams(temperature=0.5, max_tokens=16, seed=7)
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>"}]
    request = ChatRequest("k", messages, sampling, json_schema={"type": "object"}, continue_final=True)
    row = engine_row({"id": 4, "request": json.dumps(request_to_dict(request))})
    assert row["sampling_params"]["seed"] == 7 and row["sampling_params"]["max_tokens"] == 16
    assert row["sampling_params"]["structured_outputs"]["json"] == {"type": "object"}
    del row["sampling_params"]  # the engine stage consumes it; the result is read without it
    assert row["prefix"] == "<think>" and row["messages"] == messages
    out = {**row, "generated_text": " x", "num_input_tokens": 9, "num_generated_tokens": 16}
    result = engine_result(out)
    assert result["text"] == "<think> x" and result["finish_reason"] == "length"
    assert (result["prompt_tokens"], result["completion_tokens"]) == (9, 16)
    assert engine_result({**out, "num_generated_tokens": 3})["finish_reason"] == "stop"
    failed = engine_result({"id": 4, "__inference_error__": "prompt longer than the maximum model length"})
    assert failed["reason"] == "prompt_too_long" and failed["text"] == ""
