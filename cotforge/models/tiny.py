"""A tiny random chat model for fast tests and benchmarks: built in seconds, cached by content hash.

The tokenizer is a byte-level BPE trained on the bundled prompts, with ChatML special tokens and
``<think>``/``</think>`` as added tokens, so the reasoning/answer boundary never falls inside a token. The tags
are deliberately *not* special: decoders drop special tokens by default (vLLM's server does), which would erase
them from generated text. The model is a 2-layer Llama with head size 32 (vLLM's CPU attention supports it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from cotforge.serving.cache_dirs import file_lock, user_cache_dir
from cotforge.tagged import THINK_CLOSE, THINK_OPEN

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_BUILDER_VERSION = "2"


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the tiny model; every field feeds the cache key."""

    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 2
    head_dim: int = 32
    max_positions: int = 1024
    seed: int = 0

    def key(self) -> str:
        text = json.dumps({**asdict(self), "builder": _BUILDER_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _training_lines() -> list[str]:
    from cotforge.ingest.sources import bundled_prompt_files

    lines = [
        "I cannot help with that request because it could cause serious harm to other people.",
        "Here is a step by step answer: first, second, third. The result is 42.",
        "1. The user asks for help. 2. The intent is benign. 3. I should answer helpfully.",
        '{"reasoning_steps": ["step one", "step two"], "answer": "a short answer"}',
        "Sure! Let me explain. Sorry, I can't assist with illegal activities.",
    ]
    for path in bundled_prompt_files():
        for raw in path.read_text(encoding="utf-8").splitlines():
            lines.append(json.loads(raw)["prompt"])
    return lines


def _build(spec: TinyModelSpec, out: Path) -> None:
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_lines(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in (THINK_OPEN, THINK_CLOSE)])
    tokenizer.chat_template = CHATML_TEMPLATE
    torch.manual_seed(spec.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_tiny_model(spec: TinyModelSpec | None = None, cache_root: Path | None = None) -> Path:
    """Path of the tiny model folder for ``spec``, building it (~5 s) when not cached."""
    spec = spec or TinyModelSpec()
    root = cache_root or user_cache_dir("models")
    target = root / f"tiny-{spec.key()}"
    if (target / "config.json").exists():
        return target
    with file_lock(root / f".tiny-{spec.key()}.lock"):
        if (target / "config.json").exists():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=root))
        try:
            _build(spec, tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
