"""The starting policy: resolve a model reference, load model and tokenizer, make ``<think>`` atomic.

- A folder holding ``adapter_config.json`` (a LoRA adapter, e.g. ``cotforge train sft --lora`` output) is
  loaded onto its base model and **merged**: the merged model is the policy *and* the DPO reference, which is
  what SFT-then-DPO means. The base is resized to the adapter folder's tokenizer first when SFT added tokens.
- ``think_tokens="add"``: when ``<think>``/``</think>`` are not single tokens, they are added as *added
  tokens* (atomic, never split by BPE), the embeddings are resized, and each new row starts as the mean of the
  rows of the subwords the tag used to be split into.
  They are added with ``special=False`` on purpose: decoders drop special tokens by default
  (``skip_special_tokens=True`` in vLLM's OpenAI server), which would erase the tags from generations.
- Weights load in fp32; on a CUDA GPU the trainer adds bf16 autocast (mixed precision), on CPU it stays fp32
  (bf16 autocast is 5-7× slower there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotforge.errors import CotforgeError
from cotforge.models.embedded import resolve_model
from cotforge.tagged import THINK_CLOSE, THINK_OPEN
from cotforge.train.config import Precision, ThinkTokens


class PolicyLoadError(CotforgeError):
    """The starting model or adapter could not be loaded; the message says which and what to do."""


@dataclass
class LoadedPolicy:
    """A policy ready for a trainer, and what was done to get it (for the manifest)."""

    model: Any
    tokenizer: Any
    source: str  # the folder loaded
    kind: str  # "full" or "adapter_merged"
    base_model: str | None = None
    added_tokens: list[str] = field(default_factory=list)
    vocab_resized: tuple[int, int] | None = None  # (before, after)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "base_model": self.base_model,
            "added_tokens": self.added_tokens,
            "vocab_resized": list(self.vocab_resized) if self.vocab_resized else None,
        }


def use_gpu() -> bool:
    """Whether a CUDA GPU is visible (the GPU path is untested here: this project's machines are CPU-only)."""
    import torch

    return bool(torch.cuda.is_available())


def resolve_precision(precision: Precision) -> str:
    """'fp32' or 'bf16' for ``precision`` on this machine."""
    if precision == "auto":
        return "bf16" if use_gpu() else "fp32"
    if precision == "bf16" and not use_gpu():
        raise CotforgeError(
            "precision 'bf16' needs a CUDA GPU; on CPU use 'fp32' (bf16 is 5-7x slower there)"
        )
    return precision


def load_tokenizer(folder: Path) -> Any:
    """The folder's tokenizer (fast); a pad token is set to EOS when missing."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (folder / "tokenizer.json").exists():
        # AutoTokenizer may swap in a model-specific class that ignores the folder's tokenizer.json.
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    else:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "chat_template", None) is None:
        raise PolicyLoadError(f"{folder}: the tokenizer has no chat template; cotforge trains on chat turns")
    return tokenizer


def missing_think_tokens(tokenizer: Any) -> list[str]:
    """The think tags that the tokenizer does not encode as one token."""
    return [
        t for t in (THINK_OPEN, THINK_CLOSE) if len(tokenizer(t, add_special_tokens=False)["input_ids"]) != 1
    ]


def _load_model(folder: Path | str, dtype: Any) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise PolicyLoadError(f"{folder}: cannot load a causal LM ({exc})") from exc


def _pieces(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _init_rows_from_pieces(model: Any, new_tokens: dict[int, list[int]]) -> None:
    """Give each new token's embedding row the mean of the rows of the subwords its text used to be.

    Deterministic (the adapter-merge path rebuilds the same rows) and a far better start than a random or
    global-mean row; with LoRA these rows stay frozen (TRL's fused LM head cannot train peft token
    wrappers), so the initialisation is what the model gets.
    """
    import torch

    inputs = model.get_input_embeddings().weight
    output_layer = model.get_output_embeddings()
    outputs = None if output_layer is None or output_layer.weight is inputs else output_layer.weight
    with torch.no_grad():
        for token_id, pieces in new_tokens.items():
            inputs[token_id] = inputs[pieces].mean(dim=0)
            if outputs is not None:
                outputs[token_id] = outputs[pieces].mean(dim=0)


def _fit_embeddings(model: Any, tokenizer: Any, new_tokens: dict[int, list[int]]) -> tuple[int, int] | None:
    """Resize the embeddings to the tokenizer when it outgrew them, and initialise the new tokens' rows."""
    rows = model.get_input_embeddings().weight.shape[0]
    resized = None
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        resized = (rows, len(tokenizer))
    _init_rows_from_pieces(model, new_tokens)
    return resized


def _merged_adapter(folder: Path, dtype: Any) -> LoadedPolicy:
    from peft import PeftModel

    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    base_ref = config.get("base_model_name_or_path")
    if not base_ref:
        raise PolicyLoadError(f"{folder}/adapter_config.json names no base_model_name_or_path; cannot merge")
    base_dir = resolve_model(str(base_ref))
    base_tokenizer = load_tokenizer(base_dir)
    tokenizer = load_tokenizer(folder) if (folder / "tokenizer_config.json").exists() else base_tokenizer
    base = _load_model(base_dir, dtype)
    # Tokens SFT added on top of the base: rebuild their rows exactly as SFT initialised them.
    new_tokens = {
        i: _pieces(base_tokenizer, tokenizer.convert_ids_to_tokens(i))
        for i in range(len(base_tokenizer), len(tokenizer))
    }
    resized = _fit_embeddings(base, tokenizer, new_tokens)
    merged = PeftModel.from_pretrained(base, folder).merge_and_unload()
    merged.requires_grad_(True)  # peft loads adapters for inference and freezes the base it merges into
    policy = LoadedPolicy(merged, tokenizer, str(folder), "adapter_merged", base_model=str(base_dir))
    policy.vocab_resized = resized
    return policy


def load_policy(model_ref: str, think_tokens: ThinkTokens) -> LoadedPolicy:
    """Load the starting policy in fp32 (full model, or LoRA adapter merged into its base) and its tokenizer."""
    import torch
    from tokenizers import AddedToken

    dtype = torch.float32
    path = Path(model_ref).expanduser()
    if path.is_dir() and (path / "adapter_config.json").exists():
        policy = _merged_adapter(path, dtype)
    else:
        folder = resolve_model(model_ref)
        policy = LoadedPolicy(_load_model(folder, dtype), load_tokenizer(folder), str(folder), "full")
    missing = missing_think_tokens(policy.tokenizer) if think_tokens == "add" else []
    if missing:
        pieces = {t: _pieces(policy.tokenizer, t) for t in missing}
        policy.tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in missing])
        policy.added_tokens = missing
        new_tokens = {int(policy.tokenizer.convert_tokens_to_ids(t)): pieces[t] for t in missing}
        policy.vocab_resized = _fit_embeddings(policy.model, policy.tokenizer, new_tokens)
    return policy
