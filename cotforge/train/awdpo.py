"""``AlignmentWeightedDPOTrainer``: a thin subclass of TRL 1.16's ``DPOTrainer`` that weights segments.

What it changes, and nothing else:
- ``_prepare_dataset`` tokenises each pair with per-token segment ids from its character spans (see
  :mod:`cotforge.train.segments`) and drops, with a reason, pairs that cannot keep a reasoning and an answer
  token after truncation; the drops and straddle counts are in :attr:`segment_report`;
- :class:`~cotforge.train.collator.SegmentPreferenceCollator` carries ``segment_ids``, the ``w_rs``/``w_rp``
  weights and, for the ``tis`` aggregation, per-token weights in the batch, and truncates (``truncation``);
- ``_compute_loss`` takes those keys out of what reaches the model (a stray key would be swallowed by the
  model's ``**kwargs`` and training would silently be plain DPO), sums the policy and reference log-probs per
  segment and calls the pure :func:`cotforge.train.loss.aw_dpo_loss`;
- ``compute_ref_log_probs`` returns per-segment sums, so ``precompute_ref_log_probs`` stores ``(2,)`` vectors
  (token-weighted like the policy's when the rows carry token weights).

Its own options (``aggregation``, ``alpha``, ``truncation``) live on :class:`~cotforge.train.awdpo_config.AWDPOConfig`, the
``args``. The hooks are private TRL API: trl is pinned to the 1.16 series and ``tests/train/test_trl_contract.py``
pins the signatures of every hook overridden or called, so an upgrade fails loudly. Options the loss does not
implement are refused in ``__init__`` rather than ignored.
"""

from __future__ import annotations

import contextlib
from typing import Any, cast

import torch
from accelerate.utils import is_peft_model
from datasets import Dataset, IterableDataset
from trl import DPOConfig, DPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter

from cotforge.train.awdpo_config import AWDPOConfig, UnsupportedOptionError
from cotforge.train.collator import (
    NON_MODEL_KEYS,
    SEGMENT_KEYS,
    TOKEN_WEIGHT_COLUMNS,
    SegmentPreferenceCollator,
)
from cotforge.train.loss import aw_dpo_loss, pair_metrics, segment_sums
from cotforge.train.segments import ROW_COLUMNS, SegmentReport, segment_dataset

__all__ = ["AlignmentWeightedDPOTrainer", "SegmentPreferenceCollator", "UnsupportedOptionError"]


def _refuse_unsupported(args: DPOConfig) -> None:
    if not isinstance(args, AWDPOConfig):
        raise UnsupportedOptionError(
            f"args is a {type(args).__name__}; pass an AWDPOConfig (it carries `aggregation` and `alpha`)"
        )
    checks = [
        (
            args.padding_free,
            "padding_free=True (segment ids follow the padded layout); set padding_free=False",
        ),
        (list(args.loss_type) != ["sigmoid"], f"loss_type={args.loss_type}; AW-DPO is the sigmoid loss only"),
        (args.loss_weights not in (None, [1.0]), f"loss_weights={args.loss_weights}; leave it unset"),
        (args.ld_alpha is not None, "ld_alpha (LD-DPO length desensitisation); leave it None"),
        (
            args.f_divergence_type != "reverse_kl",
            f"f_divergence_type={args.f_divergence_type!r}; use reverse_kl",
        ),
        (args.use_weighting, "use_weighting=True (WPO weights); the segment weights replace it"),
        (args.label_smoothing != 0.0, f"label_smoothing={args.label_smoothing}; set 0"),
    ]
    for refused, what in checks:
        if refused:
            raise UnsupportedOptionError(f"AlignmentWeightedDPOTrainer does not support {what}")


def _refuse_scalar_ref_logps(dataset: Dataset) -> None:
    if (
        "ref_chosen_logps" in dataset.column_names
        and len(dataset)
        and not isinstance(dataset[0]["ref_chosen_logps"], list)
    ):
        raise UnsupportedOptionError(
            "the dataset carries precomputed ref_chosen_logps as one sum per sequence; AW-DPO needs "
            "per-segment sums. Drop the column and set precompute_ref_log_probs=True instead"
        )


class AlignmentWeightedDPOTrainer(DPOTrainer):
    """TRL's ``DPOTrainer`` with the segment-weighted AW-DPO loss; its options come from ``AWDPOConfig`` args.

    The training rows are TRL conversational preference rows plus ``chosen_spans``/``rejected_spans``
    ([reasoning_start, reasoning_end, answer_start, answer_end] into the assistant content) and the
    ``w_rs``/``w_rp`` weights: exactly what ``PreferencePair.to_trl_row()`` gives.
    """

    _tag_names = ["trl", "dpo", "cotforge", "aw-dpo"]  # noqa: RUF012 (TRL declares it as a plain list)
    _name = "AW-DPO"

    def __init__(
        self,
        model: Any,
        ref_model: Any = None,
        args: AWDPOConfig | None = None,
        train_dataset: Dataset | None = None,
        processing_class: Any = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            raise UnsupportedOptionError(
                "pass an AWDPOConfig (args); TRL's defaults are bf16 + checkpointing"
            )
        if processing_class is None or not hasattr(processing_class, "apply_chat_template"):
            raise UnsupportedOptionError("pass the tokenizer as processing_class (text models only)")
        _refuse_unsupported(args)
        if (
            isinstance(train_dataset, Dataset)
            and len(train_dataset)
            and any(k in train_dataset.column_names for k in ("image", "images"))
        ):
            raise UnsupportedOptionError("vision datasets are not supported by AlignmentWeightedDPOTrainer")
        self.segment_report = SegmentReport()
        self.ref_cache_stats: dict[str, dict[str, int]] = {}
        tokenizer = processing_class
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if args.pad_token is not None:
            tokenizer.pad_token = args.pad_token
        kwargs.setdefault(
            "data_collator",
            SegmentPreferenceCollator(
                pad_token_id=tokenizer.pad_token_id,
                max_length=args.max_length,
                truncation_mode=args.truncation,
                pad_to_multiple_of=args.pad_to_multiple_of,  # type: ignore[arg-type]
            ),
        )
        super().__init__(
            model,
            ref_model=ref_model,
            args=args,
            train_dataset=train_dataset,
            processing_class=tokenizer,
            **kwargs,
        )

    # -- data -------------------------------------------------------------------------------------------
    def _prepare_dataset(
        self, dataset: Any, processing_class: Any, args: DPOConfig, dataset_name: str
    ) -> Any:
        if isinstance(dataset, IterableDataset):
            raise UnsupportedOptionError(
                "streaming (Iterable) datasets are not supported: drops must be counted"
            )
        missing = [c for c in ROW_COLUMNS if c not in dataset.column_names]
        if "chosen_segment_ids" not in dataset.column_names and missing:
            raise UnsupportedOptionError(
                f"the {dataset_name} dataset lacks columns {missing}; build rows with PreferencePair.to_trl_row()"
            )
        if "chosen_segment_ids" not in dataset.column_names:
            dataset, report = segment_dataset(
                dataset,
                processing_class,
                args.max_length,
                cast(AWDPOConfig, args).truncation,
                dataset_name,
            )
            self.segment_report.merge(report)
        _refuse_scalar_ref_logps(dataset)
        if cast(AWDPOConfig, args).aggregation == "tis" and not set(TOKEN_WEIGHT_COLUMNS) <= set(
            dataset.column_names
        ):
            raise UnsupportedOptionError(
                f"aggregation 'tis' needs per-token weights: the {dataset_name} dataset lacks "
                f"{list(TOKEN_WEIGHT_COLUMNS)}; add them with cotforge.train.token_weights.add_token_weights"
            )
        if len(dataset) == 0:
            first = self.segment_report.dropped[0]["message"] if self.segment_report.dropped else "-"
            raise UnsupportedOptionError(
                f"no {dataset_name} pair survives segmentation and truncation (first reason: {first})"
            )
        return dataset

    def _precompute_ref_logps(self, dataset: Dataset, name: str, batch_size: int) -> Dataset:
        """TRL's precompute through a disk cache (:mod:`cotforge.train.ref_cache`): only pairs the cache lacks
        get a reference forward pass; the counts are in :attr:`ref_cache_stats`."""
        from cotforge.train.ref_cache import KEY_COLUMNS, RefLogpCache, reference_identity, row_key

        identity = reference_identity(self.ref_model or self.model)
        args: Any = self.args  # a DPOConfig (typed as TrainingArguments by Trainer)
        rows = dataset.select_columns(
            [*KEY_COLUMNS, *(c for c in TOKEN_WEIGHT_COLUMNS if c in dataset.column_names)]
        )
        keys = [row_key(identity, row, args.max_length, args.truncation) for row in rows]
        cache = RefLogpCache()
        try:
            found = cache.get_many(keys)
            missing = [i for i, key in enumerate(keys) if key not in found]
            if missing:
                computed = super()._precompute_ref_logps(dataset.select(missing), name, batch_size)
                fresh = [
                    (keys[i], [chosen, rejected])
                    for i, chosen, rejected in zip(
                        missing, computed["ref_chosen_logps"], computed["ref_rejected_logps"], strict=True
                    )
                ]
                cache.put_many(fresh)
                found.update(fresh)
        finally:
            cache.close()
        self.ref_cache_stats[name] = {"hits": len(keys) - len(missing), "computed": len(missing)}
        sums = [found[key] for key in keys]
        dataset = dataset.add_column("ref_chosen_logps", [s[0] for s in sums])
        return dataset.add_column("ref_rejected_logps", [s[1] for s in sums])

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            self._signature_columns = [  # type: ignore[assignment]
                "prompt_ids",
                "chosen_ids",
                "rejected_ids",
                "chosen_segment_ids",
                "rejected_segment_ids",
                "w_rs",
                "w_rp",
                "ref_chosen_logps",
                "ref_rejected_logps",
                *TOKEN_WEIGHT_COLUMNS,
            ]

    # -- forward --------------------------------------------------------------------------------------
    def _segment_forward(
        self, model: Any, inputs: dict[str, Any], reference: bool
    ) -> tuple[torch.Tensor, Any]:
        """Per-segment log-prob sums (2B, 2) of ``model`` on the batch (token-weighted when the batch carries
        ``token_weights``), and the model outputs.

        Only model inputs reach the model: the segment keys stay out of its ``**kwargs``.
        """
        model_kwargs = {k: v for k, v in inputs.items() if k not in NON_MODEL_KEYS}
        model_kwargs["use_cache"] = False
        if self.aux_loss_enabled and not reference:
            model_kwargs["output_router_logits"] = True
        labels = inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)
        # The fused head returns log-probs of tokens 1..L-1 (shifted by one), so the segment ids are too.
        shift_segments = inputs["segment_ids"][:, 1:]
        seq_len = shift_segments.size(1)
        weights = inputs["token_weights"][:, 1:] if "token_weights" in inputs else None
        if not reference:
            outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
            return segment_sums(outputs.log_probs[:, -seq_len:], shift_segments, weights), outputs
        adapter: Any = contextlib.nullcontext()
        if self.ref_model is None and is_peft_model(self.model):
            # The reference of a LoRA policy is the policy with its adapter off (or the frozen "ref" copy).
            unwrapped = self.accelerator.unwrap_model(self.model)
            adapter = use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        with (
            torch.no_grad(),
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),  # type: ignore[arg-type]
            adapter,
        ):
            outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        return segment_sums(outputs.log_probs[:, -seq_len:], shift_segments, weights), outputs

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-segment reference sums ``(B, 2)`` for chosen and rejected (stored when precomputing)."""
        with self.accelerator.autocast():
            sums, _ = self._segment_forward(model, inputs, reference=True)
        chosen, rejected = sums.chunk(2, dim=0)
        return chosen, rejected

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        missing = [k for k in SEGMENT_KEYS if k not in inputs]
        if missing:
            # Never fall back to plain DPO: a batch without segment keys is a wiring error.
            raise UnsupportedOptionError(f"batch lacks {missing}; use SegmentPreferenceCollator")
        mode = "train" if self.model.training else "eval"  # type: ignore[union-attr]
        policy_sums, outputs = self._segment_forward(model, inputs, reference=False)
        if self.precompute_ref_logps:
            ref_sums = torch.cat([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]], dim=0)
        else:
            ref_sums, _ = self._segment_forward(self.ref_model or model, inputs, reference=True)
        w_rs, w_rp = inputs["w_rs"], inputs["w_rp"]
        aggregation = cast(AWDPOConfig, self.args).aggregation
        result = aw_dpo_loss(policy_sums, ref_sums, w_rs, w_rp, self.beta, aggregation)
        loss = result.loss
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss
        self._record_metrics(mode, result, w_rs, w_rp, policy_sums, inputs, outputs)
        if return_outputs:
            with torch.no_grad():
                model_kwargs = {k: v for k, v in inputs.items() if k not in NON_MODEL_KEYS}
                outputs = model(**model_kwargs, use_cache=False)
            return loss, outputs
        return loss

    def _record_metrics(
        self,
        mode: str,
        result: Any,
        w_rs: torch.Tensor,
        w_rp: torch.Tensor,
        policy_sums: torch.Tensor,
        inputs: dict[str, Any],
        outputs: Any,
    ) -> None:
        metrics = pair_metrics(result, w_rs, w_rp)
        chosen_logps, rejected_logps = policy_sums.detach().sum(dim=1).chunk(2, dim=0)
        metrics["logps/chosen"], metrics["logps/rejected"] = chosen_logps, rejected_logps
        names = list(metrics)
        # One gather for all per-pair metrics keeps multi-process steps to a single collective.
        stacked = self.accelerator.gather(torch.stack([metrics[n].float() for n in names], dim=1))
        for name, value in zip(names, stacked.mean(dim=0).tolist(), strict=True):
            self._metrics[mode][name].append(value)
        # Token-level figures TRL also logs (entropy, mean logits, chosen top-1 accuracy), from sums so that
        # one gather serves every process.
        mask = inputs["completion_mask"][:, 1:].bool()
        n = mask.size(1)
        chosen_mask, rejected_mask = mask.chunk(2, dim=0)
        chosen_logits, rejected_logits = outputs.mean_logits[:, -n:].detach().chunk(2, dim=0)
        chosen_top1, _ = outputs.is_top1[:, -n:].chunk(2, dim=0)
        sums = torch.stack(
            [
                outputs.entropy[:, -n:].detach()[mask].sum(),
                mask.sum(),
                chosen_logits[chosen_mask].sum(),
                chosen_mask.sum(),
                rejected_logits[rejected_mask].sum(),
                rejected_mask.sum(),
                (chosen_top1 & chosen_mask).sum(),
            ]
        ).float()
        totals = self.accelerator.gather(sums).view(-1, sums.numel()).sum(dim=0).tolist()
        for name, (num, den) in {
            "entropy": (0, 1),
            "logits/chosen": (2, 3),
            "logits/rejected": (4, 5),
            "mean_token_accuracy": (6, 3),
        }.items():
            self._metrics[mode][name].append(totals[num] / totals[den] if totals[den] > 0 else 0.0)
        if mode == "train":
            tokens = self.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            self._total_train_tokens += tokens // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
