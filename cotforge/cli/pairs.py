"""CLI: `augment`, `sample`, `judge`, `pairs`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cotforge.cli import llm_options as opt
from cotforge.cli.common import RunOption, console, counts_table
from cotforge.cli.config_options import StageConfig
from cotforge.cli.stage_command import stage_command
from cotforge.runfolder import RunFiles

if TYPE_CHECKING:
    from cotforge.pairs.augment import AugmentConfig
    from cotforge.pairs.build import PairsConfig
    from cotforge.pairs.judging import JudgeConfig
    from cotforge.pairs.sampling import SampleConfig

AUGMENT = StageConfig(
    "cotforge.pairs.augment:AugmentConfig",
    {
        "tactic": "tactics",
        "per_prompt": "per_prompt",
        "limit": "limit",
        **opt.llm_flags("rewriter", "model", "base_url", "backend", "api_key_env"),
        "cache": "use_cache",
        "progress": "progress",
    },
    "augment",
)
SAMPLE = StageConfig(
    "cotforge.pairs.sampling:SampleConfig",
    {
        **opt.llm_flags("policy", "model", "base_url", "backend", "api_key_env", "temperature", "max_tokens"),
        **opt.llm_flags("policy", "seed", "concurrency"),
        "k": "k",
        "limit": "limit",
        "think_format": "think_format",
        "cache": "use_cache",
        "retry_failed": "retry_failed",
        "progress": "progress",
    },
    "sample",
)
JUDGE = StageConfig(
    "cotforge.pairs.judging:JudgeConfig",
    {
        **opt.llm_flags("judge", "model", "base_url", "backend", "api_key_env", "concurrency"),
        "crosscheck": "crosscheck",
        "cache": "use_cache",
        "retry_failed": "retry_failed",
        "progress": "progress",
    },
    "judge",
)
PAIRS = StageConfig(
    "cotforge.pairs.build:PairsConfig",
    {
        "source": "sources",
        "gamma": "gamma",
        "alpha": "alpha",
        "harm_threshold": "harm_threshold",
        "parent_rationale": "use_parent_rationale",
        "max_corrupted": "max_corrupted_samples",
        "combine": "combine",
        "max_disagreement": "max_disagreement",
        "calibration": "calibration",
        "min_agreement": "min_agreement",
    },
    "pairs",
)


def register(app: typer.Typer) -> None:
    @stage_command(app, AUGMENT)
    def augment(config: AugmentConfig, run: RunOption = Path("runs/default")) -> None:
        """Turn safety prompts into jailbreak-style variants (each records parent and tactic).

        Offline tactics: role-play, fiction, hypothetical, refusal suppression, prefix injection, persuasion,
        base64/ROT13/leetspeak, empty <think></think>, past tense (template). With a rewriter model (--model),
        past tense and translation are rewritten by that model. Writes augmented.jsonl.
        """
        from cotforge.pairs.augment import augment_in_run

        result = augment_in_run(run, config)
        rows: dict[str, object] = {"safety prompts": result.parents, "variants": result.variants}
        rows.update({f"  {k}": v for k, v in result.by_tactic.items()})
        rows["skipped (rewrite tactic, no --model)"] = result.skipped_no_rewriter
        rows["failed rewrites (augment.rejects.jsonl)"] = result.failed
        rows["too long for a prompt (augment.rejects.jsonl)"] = result.too_long
        console.print(counts_table(f"augment → {run / RunFiles.AUGMENTED}", rows))

    @stage_command(app, SAMPLE)
    def sample(config: SampleConfig, run: RunOption = Path("runs/default")) -> None:
        """Sample k candidates per prompt from a policy model, split at </think>.

        Outputs with no or several </think> are kept with that status. Writes candidates.jsonl (resumable).
        """
        from cotforge.pairs.sampling import sample_in_run

        result = sample_in_run(run, config)
        rows: dict[str, object] = {"prompts": result.prompts, "planned": result.planned}
        rows.update(already_done=result.already_done, sampled=result.sampled, failed=result.failed)
        rows.update({f"  {k}": v for k, v in result.by_status.items()})
        console.print(counts_table(f"sample → {run / RunFiles.CANDIDATES}", rows))

    @stage_command(app, JUDGE)
    def judge(config: JudgeConfig, run: RunOption = Path("runs/default")) -> None:
        """Score candidates' harmfulness: reasoning (h_rs), answer (h_rp), whole (h_f).

        With a judge model (--model), an LLM judge (three rubric questions per candidate, guided JSON) is
        primary and the rule judge cross-checks it (agreement reported); without, the rule judge alone. Several
        judges (`models:` in --config or --set) each store their own scores. Writes judgments.jsonl.
        """
        from cotforge.pairs.judging import judge_in_run

        result = judge_in_run(run, config)
        rows: dict[str, object] = {"judge": result.judge_id, "candidates": result.candidates}
        rows.update(judged=result.judged, unsplit=result.unsplit, failed=result.failed)
        if len(result.judges) > 1:
            rows.update({f"  scored by {k}": v for k, v in result.judges.items()})
        if result.agreement:
            for field in ("h_rs", "h_rp", "h_f"):
                a = result.agreement[field]
                rows[f"agreement with rules {field} (κ / exact)"] = f"{a['kappa']} / {a['agreement']}"
        for judges, a in result.agreement_between_judges.items():
            rows[f"κ h_f {judges}"] = a["h_f"]["kappa"]
        console.print(counts_table(f"judge → {run / RunFiles.JUDGMENTS}", rows))

    @stage_command(app, PAIRS)
    def pairs(config: PairsConfig, run: RunOption = Path("runs/default")) -> None:
        """Build chosen/rejected preference pairs with segment spans and AW-DPO weights.

        Sources: the paper's judge pairs (least vs most harmful candidate per prompt, h_f gap > γ), teacher
        rationale vs a harmful policy candidate, reviewer corrections vs originals, and synthetic segment
        corruptions. Several judges' scores are combined (--combine) and candidates they disagree on are left
        out (--max-disagreement); --calibration applies a `judge-calibrate report` file. Writes pairs.jsonl,
        pairs.trl.jsonl (TRL format + weight/span columns), pairs.scores.jsonl and a manifest.
        """
        from cotforge.pairs.build import build_pairs_in_run

        result = build_pairs_in_run(run, config)
        rows: dict[str, object] = {
            "pairs": result.pairs,
            **{f"  {k}": v for k, v in result.by_source.items()},
        }
        rows["rejects (pairs.rejects.jsonl)"] = result.rejects
        rows.update({f"  left out: {k}": v for k, v in result.left_out.items()})
        console.print(counts_table(f"pairs → {run / RunFiles.PAIRS}", rows))
