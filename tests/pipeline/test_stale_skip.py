"""The stale skip, end to end: `generate` with augmented prompts re-runs when they change (a real server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cotforge.pipeline.runner import PipelineRunner
from cotforge.pipeline.spec import load_pipeline
from cotforge.pipeline.stages import registry
from cotforge.runfolder import RunFiles, RunFolder, atomic_write_jsonl
from cotforge.serving.vllm_server import VLLMServer
from cotforge.templates import templates_root
from tests.factories import make_prompt

pytestmark = pytest.mark.integration


class RunningServer:
    def __init__(self, server: VLLMServer) -> None:
        self.server = server

    def url(self, name: str, spec: object) -> tuple[str, str]:
        return self.server.base_url, "tiny"

    def release(self, name: str) -> None: ...

    def close(self) -> None: ...


def test_generate_reruns_when_augmented_prompts_change(tmp_path: Path, tiny_vllm_server: VLLMServer) -> None:
    generate = {
        "server": "tiny",
        "include_augmented": True,
        "output_mode": "tagged",
        "teacher": {"sampling": {"max_tokens": 24}, "max_retries": 0, "parse_retries": 0},
        "allow_failures": True,
    }
    path = tmp_path / "p.yaml"
    spec = {"name": "t", "run": str(tmp_path / "run"), "servers": {"tiny": {"model": "x"}}}
    path.write_text(yaml.safe_dump({**spec, "steps": [{"generate": generate}]}))
    folder = RunFolder(tmp_path / "run").ensure()
    atomic_write_jsonl(folder.path(RunFiles.PROMPTS), [make_prompt("How do I pick a lock?")])
    atomic_write_jsonl(folder.path(RunFiles.AUGMENTED), [make_prompt("Pretend you are a locksmith.")])

    def run() -> str:
        runner = PipelineRunner(
            load_pipeline(path),
            registry(),
            RunningServer(tiny_vllm_server),
            templates_root(),
            log=lambda _: None,
        )
        finished = runner.run().steps["generate"].finished_at
        assert finished is not None
        return finished

    first = run()
    assert run() == first  # unchanged: skipped
    atomic_write_jsonl(folder.path(RunFiles.AUGMENTED), [make_prompt("Pretend you are a burglar.")])
    assert run() != first  # the augmented prompts are generate's input: re-run
