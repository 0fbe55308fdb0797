"""Prices and spend: the price table, the run's usage ledger, and cost per stage and for the pipeline.

The price table is ``cotforge/data/prices.yaml`` extended by a user file (``prices_file`` in an LLM config, or
``$COTFORGE_PRICES``); an explicit ``price`` in the config wins. A model this machine serves (the offline engine,
a server on this host) costs 0; any other model with no price costs ``None``, never 0, and is named once per
process.

The ledger (``usage.jsonl`` in the run folder) gets one line per response the server sent, written as it
arrives, so what a killed run paid for is still counted after the resume; answers served from the cache cost
nothing and are not in it.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from functools import cache
from importlib import resources
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cotforge.errors import CotforgeError
from cotforge.llm.config import LLMConfig, PriceTable
from cotforge.runfolder import AppendLog, RunFiles
from cotforge.schemas import TokenUsage

PRICES_ENV = "COTFORGE_PRICES"
LOCAL_HOSTNAMES = frozenset({"127.0.0.1", "localhost", "0.0.0.0", "::1"})
LEDGER_FILE = RunFiles.USAGE
_warned: set[str] = set()


class _PriceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)
    batch_prompt: float | None = Field(default=None, ge=0)
    batch_completion: float | None = Field(default=None, ge=0)

    def table(self) -> PriceTable:
        return PriceTable(
            prompt_per_million=self.prompt,
            completion_per_million=self.completion,
            batch_prompt_per_million=self.batch_prompt,
            batch_completion_per_million=self.batch_completion,
        )


def _read_table(text: str, source: str) -> dict[str, PriceTable]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CotforgeError(f"price table {source}: not YAML: {exc}") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise CotforgeError(
            f"price table {source}: expected a `models:` mapping of name → {{prompt, completion}}"
        )
    out: dict[str, PriceTable] = {}
    for name, entry in models.items():
        try:
            out[str(name)] = _PriceEntry.model_validate(entry).table()
        except ValidationError as exc:
            first = exc.errors()[0]
            raise CotforgeError(
                f"price table {source}: model {name!r}: {'.'.join(map(str, first['loc']))} {first['msg']} "
                "(give USD per million tokens as `prompt:` and `completion:`)"
            ) from exc
    return out


@cache
def _bundled() -> dict[str, PriceTable]:
    text = resources.files("cotforge").joinpath("data/prices.yaml").read_text(encoding="utf-8")
    return _read_table(text, "cotforge/data/prices.yaml")


def price_table(extra_file: str | None = None) -> dict[str, PriceTable]:
    """The bundled prices, extended (and overridden) by ``$COTFORGE_PRICES`` and then ``extra_file``."""
    table = dict(_bundled())
    for path in (os.environ.get(PRICES_ENV), extra_file):
        if not path:
            continue
        file = Path(path)
        if not file.is_file():
            raise CotforgeError(f"price table {path}: no such file (set by prices_file or ${PRICES_ENV})")
        table.update(_read_table(file.read_text(encoding="utf-8"), path))
    return table


def _say_unpriced(model: str, stream: IO[str] | None = None) -> None:
    if model in _warned:
        return
    _warned.add(model)
    print(
        f"cotforge: no price for model {model!r}: its cost is reported as null. Add it to a price table "
        f"(prices_file, ${PRICES_ENV}) or set `price:` in its config ({{prompt_per_million, "
        "completion_per_million}; 0 for a free local model).",
        file=stream or sys.stderr,
    )


LOCAL = PriceTable(prompt_per_million=0.0, completion_per_million=0.0)


def is_local(config: LLMConfig) -> bool:
    """A model this machine runs: the in-process vLLM engine, or servers on this host only (a pipeline's
    ``servers:`` entry, the embedded model, `cotforge serve`)."""
    if config.backend == "vllm":
        return True
    return bool(config.base_urls) and all(
        urlsplit(url).hostname in LOCAL_HOSTNAMES for url in config.base_urls
    )


def price_for(config: LLMConfig, warn: bool = True) -> PriceTable | None:
    """This model's price: the config's own, else the price table's entry, else 0 for a local model, else
    ``None`` (said once)."""
    if config.price is not None:
        return config.price
    found = price_table(config.prices_file).get(config.model)
    if found is None and is_local(config):
        return LOCAL
    if found is None and warn:
        _say_unpriced(config.model)
    return found


def cost_of(usage: TokenUsage, price: PriceTable | None, batch: bool = False) -> float | None:
    """What ``usage`` cost at ``price`` (``None`` when the price is unknown)."""
    return None if price is None else price.cost(usage, batch=batch)


class UsageLedger:
    """Append-only ``usage.jsonl``: one line per response the server sent (what was paid for)."""

    def __init__(self, path: Path, stage: str, config: LLMConfig) -> None:
        self.path = path
        self._base = {"stage": stage, "model": config.model, "mode": config.mode}
        # Priced when spent: the config's own price or the table's, as they were for this call.
        self._price = price_for(config, warn=False)
        self._batch = config.mode == "batch"
        self._file: AppendLog | None = None

    def record(self, usage: TokenUsage) -> None:
        """Append one response's usage (an AppendLog: whole lines only, a full disk is a named error)."""
        if self._file is None:
            self._file = AppendLog(self.path)
        line = {
            **self._base,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": cost_of(usage, self._price, self._batch),
        }
        self._file.append(line)
        self._file.flush(durable=False)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class UsageLedgerError(CotforgeError):
    """A line of ``usage.jsonl`` that is not a usage line cotforge wrote (the message names file and line)."""


def _usage_problem(row: Any) -> str | None:
    """Why ``row`` is not a usage line (``None`` when it is; keys it does not know are allowed)."""
    if not isinstance(row, dict):
        return "not a JSON object"
    for key in ("stage", "model"):
        if not isinstance(row.get(key), str):
            return f"`{key}` must be a string"
    for key in ("prompt_tokens", "completion_tokens"):
        value = row.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"`{key}` must be a count of tokens"
    cost = row.get("cost_usd")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0):
        return "`cost_usd` must be a non-negative number or null"
    return None


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """The ledger's lines. Keys a newer cotforge added are ignored and a last line torn by a kill is skipped;
    any other line that is not a usage line is a :class:`UsageLedgerError` naming it."""
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    rows: list[dict[str, Any]] = []
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
            problem = _usage_problem(row)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            if lineno == len(lines):
                continue  # cut off by a kill mid-write; the next append cuts it away
            problem = "not JSON"
        if problem is not None:
            raise UsageLedgerError(
                f"{path}:{lineno}: not a usage line ({problem}). {LEDGER_FILE} is the spend ledger cotforge "
                "appends one line to per paid response: delete that line, or move the file away to stop "
                "counting what was spent before",
                file=path,
                line=lineno,
            )
        rows.append(row)
    return rows


def stage_costs(
    rows: list[dict[str, Any]], cached: dict[str, int] | None = None
) -> dict[str, dict[str, Any]]:
    """Per stage: requests paid for, tokens, cost (``None`` if any call had no price), models, and
    ``cached_requests`` (answered from the cache at no cost) when ``cached`` gives them."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "requests": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
            "models": [],
            "unpriced_models": [],
        }
    )
    for row in rows:
        entry = out[row["stage"]]
        entry["requests"] += 1
        entry["prompt_tokens"] += row["prompt_tokens"]
        entry["completion_tokens"] += row["completion_tokens"]
        if row["model"] not in entry["models"]:
            entry["models"].append(row["model"])
        cost = row.get("cost_usd")
        if cost is None and row["model"] not in entry["unpriced_models"]:
            entry["unpriced_models"].append(row["model"])
        entry["cost_usd"] = None if cost is None or entry["cost_usd"] is None else entry["cost_usd"] + cost
    for stage, n in (cached or {}).items():
        out[stage]["cached_requests"] = n
    for entry in out.values():
        if entry["cost_usd"] is not None:
            entry["cost_usd"] = round(entry["cost_usd"], 6)
        entry.setdefault("cached_requests", 0)
    return dict(out)


def pipeline_cost(stages: dict[str, dict[str, Any]], kept_samples: int, kept_pairs: int) -> dict[str, Any]:
    """The pipeline total over ``stages`` and the cost per kept sample and per kept pair (``None`` when the
    total is unknown or nothing was kept)."""
    costs = [s["cost_usd"] for s in stages.values()]
    total = None if any(c is None for c in costs) else round(sum(costs), 6)
    unpriced = sorted({m for s in stages.values() for m in s["unpriced_models"]})
    return {
        "stages": stages,
        "total_usd": total,
        "unpriced_models": unpriced,
        "prompt_tokens": sum(s["prompt_tokens"] for s in stages.values()),
        "completion_tokens": sum(s["completion_tokens"] for s in stages.values()),
        "kept_samples": kept_samples,
        "kept_pairs": kept_pairs,
        "per_kept_sample_usd": None if total is None or not kept_samples else round(total / kept_samples, 8),
        "per_kept_pair_usd": None if total is None or not kept_pairs else round(total / kept_pairs, 8),
    }


def run_cost(run_dir: str | Path) -> dict[str, Any]:
    """The run folder's spend: its ledger priced per stage, each stage's cached requests (from its manifest),
    and the cost per kept sample (``accepted.jsonl``) and per kept pair (``pairs.jsonl``)."""
    from cotforge.runfolder import RunFiles, RunFolder
    from cotforge.runfolder.manifest import load_manifest

    folder = RunFolder(run_dir)
    rows = read_ledger(folder.path(LEDGER_FILE))
    cached: dict[str, int] = {}
    for stage in sorted({row["stage"] for row in rows}):
        manifest = load_manifest(folder, stage)
        if manifest is not None:
            cached[stage] = manifest.usage.cached_requests
    return pipeline_cost(
        stage_costs(rows, cached),
        _count_lines(folder.path(RunFiles.ACCEPTED)),
        _count_lines(folder.path(RunFiles.PAIRS)),
    )


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())
