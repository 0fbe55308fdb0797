"""Token importance weights for the ``tis`` aggregation, in the manner of TIS-DPO (Liu et al., ICLR 2025).

TIS-DPO weighs each token by how much more likely a *positive* model finds it than a *negative* one:
``w_t = k · exp(μ · clamp(log p+(y_t) − log p−(y_t), L, U))`` with ``μ = +1`` on the chosen completion and
``μ = −1`` on the rejected one, so the tokens that make a chosen answer good and a rejected answer bad carry
the preference signal. What cotforge simplifies (documented in ``docs/training.md``):

- the contrastive pair is, by default, the starting model under a harmless and a harmful system prompt (the
  paper's prompt-based contrast, its cheapest of three); two trained models can be given instead;
- ``k`` rescales each completion's weights to mean 1, so weighting redistributes the signal over tokens
  without changing its total;
- the objective is DPO over the weighted log-ratio sums; the paper's sequential-KL correction term is left out.

Weights are computed once, before training, with no gradient, and kept in the reference cache's SQLite file
(table ``tis_weights``), so seeds and methods that share pairs and models pay for them once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import torch

from cotforge.errors import CotforgeError
from cotforge.train.config import TISSettings

BATCH = 8


class TokenWeightError(CotforgeError):
    """Token weights cannot be computed for these pairs and models; the message says why and what to do."""


def tis_token_weights(
    positive_logps: torch.Tensor, negative_logps: torch.Tensor, chosen: bool, lower: float, upper: float
) -> torch.Tensor:
    """TIS-DPO weights of one completion's tokens from the two models' per-token log-probs (both ``(T,)``)."""
    if positive_logps.shape != negative_logps.shape or positive_logps.dim() != 1:
        raise ValueError(
            f"need two (T,) log-prob vectors, got {tuple(positive_logps.shape)}, {tuple(negative_logps.shape)}"
        )
    if not lower <= 0.0 <= upper:
        raise ValueError(f"need lower <= 0 <= upper, got {lower}, {upper}")
    if positive_logps.numel() == 0:
        return positive_logps.clone()
    contrast = (positive_logps - negative_logps).clamp(lower, upper)
    weights = torch.exp(contrast if chosen else -contrast)
    return weights * (weights.numel() / weights.sum())


def completion_logps(
    model: Any, sequences: Sequence[tuple[list[int], list[int]]], description: str | None = None
) -> list[torch.Tensor]:
    """Per-token log-probs of each ``(prompt_ids, completion_ids)`` sequence's completion under ``model``
    (batched, no gradient; a progress bar with ``description``)."""
    from rich.progress import track

    out: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    starts = range(0, len(sequences), BATCH)
    try:
        for start in track(starts, description=description) if description else starts:
            chunk = sequences[start : start + BATCH]
            rows = [p + c for p, c in chunk]
            ids = torch.zeros((len(rows), max(map(len, rows))), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, row in enumerate(rows):
                ids[i, : len(row)] = torch.tensor(row)
                mask[i, : len(row)] = 1
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            token_logps = torch.log_softmax(logits, dim=-1).gather(2, ids[:, 1:, None])[..., 0]
            for i, (prompt, completion) in enumerate(chunk):
                out.append(token_logps[i, len(prompt) - 1 : len(prompt) - 1 + len(completion)].clone())
    finally:
        model.train(was_training)
    return out


def _prompt_ids(tokenizer: Any, system: str, prompt: list[dict[str, str]]) -> list[int]:
    messages = [{"role": "system", "content": system}, *(m for m in prompt if m["role"] != "system")]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _key(identity: str, settings: TISSettings, row: dict[str, Any]) -> str:
    payload = [identity, settings.model_dump(mode="json"), row["prompt"], row["prompt_ids"], row["chosen_ids"],
               row["rejected_ids"]]  # fmt: skip
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def _contrast(policy: Any, settings: TISSettings) -> tuple[Any, Any, str]:
    """The positive and negative models and an identity string for the cache key."""
    from cotforge.train.policy import load_policy
    from cotforge.train.ref_cache import reference_identity

    if settings.positive_model is None or settings.negative_model is None:
        return policy.model, policy.model, reference_identity(policy.model)
    models = []
    for ref in (settings.positive_model, settings.negative_model):
        loaded = load_policy(ref, "add")
        if loaded.tokenizer.get_vocab() != policy.tokenizer.get_vocab():
            raise TokenWeightError(
                f"tis contrast model {ref}: its tokenizer differs from the policy's ({policy.source}); the "
                "contrastive models must share the policy's tokenizer (train them from the same starting model)"
            )
        models.append(loaded.model)
    return models[0], models[1], reference_identity(models[0]) + reference_identity(models[1])


def add_token_weights(dataset: Any, policy: Any, settings: TISSettings, progress: bool = False) -> Any:
    """``dataset`` (segmented rows: ``prompt``, ``prompt_ids``, ``chosen_ids``, ``rejected_ids``) plus
    ``chosen_token_weights`` and ``rejected_token_weights`` columns; only rows the cache lacks are scored."""
    from cotforge.train.ref_cache import RefLogpCache

    positive, negative, identity = _contrast(policy, settings)
    rows = list(dataset.select_columns(["prompt", "prompt_ids", "chosen_ids", "rejected_ids"]))
    keys = [_key(identity, settings, row) for row in rows]
    cache = RefLogpCache(table="tis_weights")
    try:
        found = cache.get_many(keys)
        missing = [i for i, key in enumerate(keys) if key not in found]
        sequences: dict[str, list[tuple[list[int], list[int]]]] = {"positive": [], "negative": []}
        for i in missing:
            row = rows[i]
            prompt = [{"role": m["role"], "content": m["content"]} for m in row["prompt"]]
            for name, system, model_ref in (
                ("positive", settings.positive_system, settings.positive_model),
                ("negative", settings.negative_system, settings.negative_model),
            ):
                # Two models score under the pair's own prompt; one model under the two system prompts.
                prompt_ids = (
                    list(row["prompt_ids"]) if model_ref else _prompt_ids(policy.tokenizer, system, prompt)
                )
                sequences[name] += [(prompt_ids, list(row[f"{side}_ids"])) for side in ("chosen", "rejected")]
        logps = {
            name: completion_logps(model, sequences[name], f"TIS weights ({name})" if progress else None)
            for name, model in (("positive", positive), ("negative", negative))
        }
        fresh = []
        for n, i in enumerate(missing):
            value = [
                tis_token_weights(
                    logps["positive"][2 * n + side], logps["negative"][2 * n + side], side == 0,
                    settings.lower, settings.upper,
                ).tolist()
                for side in (0, 1)
            ]  # fmt: skip
            fresh.append((keys[i], value))
        cache.put_many(fresh)
        found.update(fresh)
    finally:
        cache.close()
    weights = [found[key] for key in keys]
    dataset = dataset.add_column("chosen_token_weights", [w[0] for w in weights])
    return dataset.add_column("rejected_token_weights", [w[1] for w in weights])
