"""Utility benchmarks (GSM8K, MMLU, any lm-evaluation-harness task) on the server cotforge evaluates.

The harness runs programmatically (``lm_eval.simple_evaluate``) against the model's OpenAI-compatible server:
generation tasks through ``local-chat-completions`` (chat template applied by the server), log-likelihood tasks
(multiple choice) through ``local-completions`` (prompt log-probs via ``echo``; needs the model's tokenizer).
The harness's own prompts, filters and metrics score the answers; this module only reads its results.

Offline data: ``data_dir`` holds local copies of the tasks' data (:mod:`cotforge.evaluation.utility_tasks`).
"""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cotforge.errors import ConfigError, StageInputError
from cotforge.evaluation.utility_tasks import write_offline_tasks
from cotforge.runfolder.manifest import scrub_secrets
from cotforge.schemas import TokenUsage

ModelType = Literal["local-chat-completions", "local-completions"]
# Output types that score prompt log-probs: only /v1/completions (echo + logprobs) gives those.
LOGLIKELIHOOD_TYPES = frozenset({"loglikelihood", "loglikelihood_rolling", "multiple_choice"})


class UtilityConfig(BaseModel):
    """Which lm-eval tasks to run on the evaluated model, and where their data lies when offline."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(min_length=1)
    data_dir: str | None = None
    include_path: str | None = None
    limit: int | None = Field(default=None, ge=1)
    num_fewshot: int | None = Field(default=None, ge=0)
    model_type: Literal["auto", "local-chat-completions", "local-completions"] = "auto"
    tokenizer: str | None = None
    max_gen_toks: int | None = Field(default=None, ge=1)
    max_length: int = Field(default=2048, ge=16)
    num_concurrent: int = Field(default=4, ge=1, json_schema_extra={"operational": True})
    max_retries: int = Field(default=3, ge=1, json_schema_extra={"operational": True})


def flatten_results(raw: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``{task: {metric: value}}`` from lm-eval's results: ``"exact_match,strict-match"`` becomes
    ``"exact_match/strict-match"``, filter ``none`` is dropped, stderr kept, non-numbers (alias, "N/A") skipped;
    ``n_samples`` is the number of items scored (summed over a group's subtasks)."""
    counts = raw.get("n-samples") or {}
    out: dict[str, dict[str, float]] = {}
    for task, metrics in (raw.get("results") or {}).items():
        row: dict[str, float] = {}
        for key, value in metrics.items():
            if key == "sample_len":  # lm-eval's item count; a group has only this one
                row["n_samples"] = float(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                continue
            metric, _, filter_name = key.partition(",")
            row[metric if filter_name in ("", "none") else f"{metric}/{filter_name}"] = float(value)
        if task in counts:
            row["n_samples"] = float(counts[task].get("effective", 0))
        out[task] = row
    return out


def _load_tasks(manager: Any, tasks: Sequence[str], data_dir: str | None) -> dict[str, set[str]]:
    """Each task's leaf output types; a task whose data cannot be had is a clear error naming it."""
    types: dict[str, set[str]] = {}
    for task in tasks:
        if task not in manager.task_index:
            raise ConfigError(f"utility task {task!r} is not an lm-eval task (nor in include_path)")
        try:
            loaded = manager.load([task])
        except OSError as exc:  # ConnectionError (offline Hub), DatasetNotFoundError, missing files
            where = f"{data_dir}/{task}/" if data_dir else "data_dir/<task>/ (set utility data_dir)"
            raise StageInputError(
                f"utility task {task}: its data could not be loaded ({exc}); without network, put local copies "
                f"in the dataset's own columns under {where} (see cotforge.evaluation.utility)"
            ) from exc
        types[task] = {str(t.config.output_type) for t in loaded["tasks"].values()}
    return types


def _model_args(config: UtilityConfig, model_type: ModelType, base_url: str, model: str) -> dict[str, Any]:
    args: dict[str, Any] = {
        "model": model,
        "num_concurrent": config.num_concurrent,
        "max_retries": config.max_retries,
        "max_length": config.max_length,
    }
    if config.max_gen_toks is not None:
        args["max_gen_toks"] = config.max_gen_toks
    if model_type == "local-chat-completions":
        return args | {"base_url": f"{base_url}/chat/completions"}
    args["base_url"] = f"{base_url}/completions"
    if config.tokenizer is not None:
        if not Path(config.tokenizer).is_dir():
            raise ConfigError(
                f"utility tokenizer {config.tokenizer}: no such folder; give the model's local folder"
            )
        return args | {"tokenizer": config.tokenizer, "tokenizer_backend": "huggingface"}
    from lm_eval.utils import check_remote_tokenizer_support

    if not check_remote_tokenizer_support(args["base_url"]):
        raise ConfigError(
            "utility: log-likelihood tasks run through /v1/completions and need the model's tokenizer; set "
            "utility tokenizer: to the model's local folder (the server offers no /tokenize endpoint)"
        )
    return args | {"tokenizer_backend": "remote"}


def _write_outputs(raw: Mapping[str, Any], folder: Path) -> None:
    """lm-eval's results JSON (secrets scrubbed) and one JSONL of scored samples per task."""
    from lm_eval.utils import handle_non_serializable

    folder.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in raw.items() if k != "samples"}
    text = json.dumps(summary, default=handle_non_serializable, ensure_ascii=False)
    (folder / "results.json").write_text(
        json.dumps(scrub_secrets(json.loads(text)), indent=2), encoding="utf-8"
    )
    for task, samples in (raw.get("samples") or {}).items():
        lines = [json.dumps(s, default=handle_non_serializable, ensure_ascii=False) for s in samples]
        (folder / f"samples_{task}.jsonl").write_text(
            "".join(f"{line}\n" for line in lines), encoding="utf-8"
        )


@functools.cache
def _indexed_task_manager(include_path: str | None) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path)


def _task_manager(include_path: str | None) -> Any:
    """A TaskManager with its own copy of the task index (safe to add generated tasks to).

    Indexing parses every stock task YAML (~15 s here), so the index is built once per process and copied.
    """
    indexed = _indexed_task_manager(include_path)
    manager = copy.copy(indexed)
    manager._index = dict(indexed.task_index)
    return manager


def _counted_usage(outputs: Any, on_usage: Callable[[TokenUsage], None]) -> None:
    for out in outputs if isinstance(outputs, list) else [outputs]:
        usage = out.get("usage") if isinstance(out, dict) else None
        if isinstance(usage, dict):
            on_usage(
                TokenUsage(
                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0),
                )
            )


@functools.cache
def _counting_model(model_type: ModelType) -> type[Any]:
    """lm-eval's API model for ``model_type``, reporting each response's token usage to ``self.on_usage``."""
    import lm_eval.api.registry

    base: type[Any] = lm_eval.api.registry.get_model(model_type)

    class CountingModel(base):  # type: ignore[valid-type,misc]
        on_usage: Callable[[TokenUsage], None] = staticmethod(lambda _usage: None)

        def parse_generations(self, outputs: Any, **kwargs: Any) -> Any:
            _counted_usage(outputs, self.on_usage)
            return super().parse_generations(outputs=outputs, **kwargs)

        def parse_logprobs(self, outputs: Any, tokens: Any = None, ctxlens: Any = None, **kwargs: Any) -> Any:
            _counted_usage(outputs, self.on_usage)
            return super().parse_logprobs(outputs=outputs, tokens=tokens, ctxlens=ctxlens, **kwargs)

    return CountingModel


def run_utility(
    config: UtilityConfig,
    *,
    base_url: str,
    model: str,
    output_dir: Path,
    on_usage: Callable[[TokenUsage], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Run ``config.tasks`` through lm-evaluation-harness on the OpenAI-compatible server at ``base_url``.

    Returns ``{task: {metric: value}}`` (groups and their subtasks included) and writes lm-eval's results JSON
    and samples under ``output_dir/<model_type>/``; ``on_usage`` gets the token usage of every response the
    server sent. Raises ``ConfigError``/``StageInputError`` naming the task.
    """
    from lm_eval import simple_evaluate
    from lm_eval.tasks._index import TaskIndex

    base_url = base_url.rstrip("/")
    if config.include_path is not None and not Path(config.include_path).is_dir():
        raise ConfigError(f"utility include_path {config.include_path}: no such folder")
    manager = _task_manager(config.include_path)
    with tempfile.TemporaryDirectory(prefix="cotforge-lm-eval-") as staging_dir:
        staging = Path(staging_dir)
        if config.data_dir is not None:
            data_dir = Path(config.data_dir)
            if not data_dir.is_dir():
                raise StageInputError(f"utility data_dir {data_dir}: no such folder", file=data_dir)
            if write_offline_tasks(manager.task_index, config.tasks, data_dir, staging, config.num_fewshot):
                # Later entries win, as with include_path; a second TaskManager would re-index every stock task.
                manager.task_index.update(TaskIndex.build([staging]))
        output_types = _load_tasks(manager, config.tasks, config.data_dir)
        by_type: dict[ModelType, list[str]] = {}
        for task in config.tasks:
            needs_logprobs = bool(output_types[task] & LOGLIKELIHOOD_TYPES)
            auto: ModelType = "local-completions" if needs_logprobs else "local-chat-completions"
            by_type.setdefault(auto if config.model_type == "auto" else config.model_type, []).append(task)
        results: dict[str, dict[str, float]] = {}
        for model_type, tasks in by_type.items():
            if model_type == "local-chat-completions" and any(
                output_types[t] & LOGLIKELIHOOD_TYPES for t in tasks
            ):
                raise ConfigError(
                    f"utility tasks {tasks}: log-likelihood tasks cannot run through chat completions; "
                    "use model_type auto or local-completions"
                )
            chat = model_type == "local-chat-completions"
            lm = _counting_model(model_type).create_from_arg_obj(
                _model_args(config, model_type, base_url, model),
                {"batch_size": None, "max_batch_size": None, "device": None},
            )
            if on_usage is not None:
                lm.on_usage = on_usage
            raw = simple_evaluate(
                model=lm,
                tasks=list(tasks),
                task_manager=manager,
                num_fewshot=config.num_fewshot,
                limit=config.limit,
                apply_chat_template=chat,
                fewshot_as_multiturn=chat,
                log_samples=True,
            )
            if raw is None:  # only non-zero ranks of a distributed run get None
                raise ConfigError("utility: lm-eval returned no results")
            _write_outputs(raw, output_dir / model_type)
            results |= flatten_results(raw)
    return results
