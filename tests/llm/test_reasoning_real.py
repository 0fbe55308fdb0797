"""`native_reasoning` on a real vLLM server started with a reasoning parser (deepseek_r1): the server's
separate reasoning becomes the <think> segment and the samples go through validation like any other."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cotforge.generation.generate import generate_in_run
from cotforge.generation.requests import GenerateConfig
from cotforge.generation.validate import ValidationConfig, validate_in_run
from cotforge.runfolder import RunFiles, read_jsonl
from cotforge.schemas import Sample
from cotforge.serving.vllm_server import VLLMServer
from tests.llm.conftest import small_generation

pytestmark = pytest.mark.integration

# The tiny model is random: a grammar (llguidance lark, special tokens by id) makes it write <think> (1024) …
# </think> (1025) then an answer, so the server's reasoning parser has something to split.
GRAMMAR = "\n".join(
    [
        r'start: <[1024]> "\n1. " W "\n2. " W "\n" <[1025]> "\n\n" A',
        r"W: /[a-z]{3,8}( [a-z]{3,8}){1,3}/",
        r"A: /[A-Z][a-z]{3,8}( [a-z]{3,8}){1,5}[.]/",
    ]
)


@pytest.fixture(scope="module")
def reasoning_server(tiny_model_dir: Path) -> Iterator[VLLMServer]:
    structured = {"backend": "guidance", "disable_any_whitespace": True, "enable_in_reasoning": True}
    extra = ["--reasoning-parser", "deepseek_r1", "--structured-outputs-config", json.dumps(structured)]
    with VLLMServer(str(tiny_model_dir), served_model_name="tiny", structured=False, max_num_seqs=8,
                    extra_args=extra) as server:  # fmt: skip
        yield server


def test_native_reasoning_samples_come_from_the_reasoning_field_and_validate(
    prompts_run: Path, reasoning_server: VLLMServer
) -> None:
    raw = small_generation(
        "tiny", reasoning_server.base_url, extra_body={"structured_outputs": {"grammar": GRAMMAR}}
    )
    config = GenerateConfig.model_validate({**raw, "output_mode": "native_reasoning", "limit": 3})
    result = generate_in_run(prompts_run, config)
    assert result.planned == 3 and result.generated == 3 and result.rejected == 0
    for sample in read_jsonl(prompts_run / RunFiles.SAMPLES, Sample):
        assert sample.output_mode == "native_reasoning"
        # The server returned no tags in the content: the <think> segment is the separate reasoning field.
        head, answer = sample.raw_text.split("</think>\n\n")
        assert head.startswith("<think>\n1. ") and len(sample.rationale.reasoning_steps) == 2
        assert sample.rationale.answer == answer and answer.endswith(".")
    validation = validate_in_run(prompts_run, ValidationConfig())
    assert validation.samples == 3 and validation.accepted + validation.rejected == 3
    assert not {"no_think_close", "no_think_open", "parse_failed"} & set(validation.reasons)
