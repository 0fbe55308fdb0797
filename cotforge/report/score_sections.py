"""Report sections about scores and models: judge scores, pairs and weights, training curves, evaluation. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from cotforge import charts
from cotforge.evaluation.summary import EVAL_RESULTS, EvalSummary, suite_rates
from cotforge.release.provenance import configured_judge
from cotforge.release.run_contents import RunContents
from cotforge.report.section import Figure, Section, Table, fmt, not_run
from cotforge.runfolder import RunFiles

# Training-log panels: title → the metrics drawn in it (those a log lacks are left out).
TRAINING_PANELS: dict[str, tuple[str, ...]] = {
    "loss": ("loss",),
    "loss per segment": ("loss/reasoning", "loss/answer"),
    "reward margin per segment": ("rewards/margins", "rewards/margins_reasoning", "rewards/margins_answer"),
    "preference accuracy per segment": (
        "rewards/accuracies",
        "rewards/accuracies_reasoning",
        "rewards/accuracies_answer",
    ),
    "mean segment weight in batch": ("weights/w_rs", "weights/w_rp"),
    "learning rate": ("learning_rate",),
}


def judge_section(contents: RunContents, dpi: int) -> Section:
    """Distributions of the judge's harmfulness scores: reasoning (h_rs), answer (h_rp), whole output (h_f)."""
    if not contents.judgments:
        return not_run("judge", "Judge scores", f"no {RunFiles.JUDGMENTS}: run `cotforge judge`")
    j = contents.judgments
    series = {"h_rs (reasoning)": [s.h_rs for s in j], "h_rp (answer)": [s.h_rp for s in j],
              "h_f (whole output)": [s.h_f for s in j]}  # fmt: skip
    figures = [
        Figure(name="judge_scores", caption="Judge harmfulness scores (0 harmless … 1 harmful)",
               png=charts.histograms(series, "Judge harmfulness scores", "score", bins=10,
                                     value_range=(0.0, 1.0), dpi=dpi)),
    ]  # fmt: skip
    unsplit = sum(c.status != "ok" for c in contents.candidates)
    note = f"judge: {configured_judge(contents)}; {len({s.candidate_id for s in j})} candidates scored"
    if unsplit:
        note += f"; {unsplit} candidates had no single </think> and could not be split"
    judges = Counter(s.judge_id for s in j)
    table = Table(
        title="judge ids", headers=["judge", "scored"], rows=[[k, str(v)] for k, v in judges.items()]
    )
    return Section(key="judge", title="Judge scores", note=note, figures=figures, tables=[table])


def pairs_section(contents: RunContents, dpi: int) -> Section:
    """Preference pairs by source and tactic, and the AW-DPO segment weights w_rs / w_rp."""
    if not contents.pairs:
        return not_run("pairs", "Pairs and segment weights", f"no {RunFiles.PAIRS}: run `cotforge pairs`")
    pairs = contents.pairs
    weights = {
        "w_rs (reasoning)": [p.weights.w_rs for p in pairs],
        "w_rp (answer)": [p.weights.w_rp for p in pairs],
    }
    top = max((max(v) for v in weights.values()), default=1.0)
    figures = [
        Figure(name="segment_weights", caption="Segment weights of the preference pairs",
               png=charts.histograms(weights, "Segment weights", "weight", bins=20,
                                     value_range=(0.0, max(1.0, top)), dpi=dpi)),
        Figure(name="pairs_by_source", caption="Pairs by source",
               png=charts.bar_chart(dict(Counter(p.source for p in pairs).most_common()), "Pairs by source",
                                    dpi=dpi, horizontal=True)),
    ]  # fmt: skip
    tactics = Counter(p.tactic or "direct" for p in pairs)
    if len(tactics) > 1:
        figures.append(
            Figure(name="pairs_by_tactic", caption="Pairs by tactic",
                   png=charts.bar_chart(dict(tactics.most_common()), "Pairs by tactic", dpi=dpi, horizontal=True))
        )  # fmt: skip
    return Section(key="pairs", title="Pairs and segment weights", figures=figures)


def _series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [
        (float(r["step"]), float(r[key]))
        for r in rows
        if isinstance(r.get(key), int | float) and isinstance(r.get("step"), int | float)
    ]
    return [p[0] for p in points], [p[1] for p in points]


def training_figure(name: str, rows: Sequence[dict[str, Any]], dpi: int) -> Figure | None:
    """Curves of one training run's step log (``loss`` rows only; the final summary row is skipped)."""
    steps = [r for r in rows if "loss" in r and "train_runtime" not in r]
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for title, keys in TRAINING_PANELS.items():
        series = {k.split("/")[-1] if len(keys) > 1 else k: _series(steps, k) for k in keys}
        series = {k: v for k, v in series.items() if v[0]}
        if series:
            panels[title] = series
    if not panels:
        return None
    return Figure(name=f"training_{name}", caption=f"Training curves: {name}",
                  png=charts.line_panels(panels, f"Training: models/{name}", dpi=dpi))  # fmt: skip


def training_section(contents: RunContents, dpi: int) -> Section:
    """Per trained model: loss, and for AW-DPO the reward margin, accuracy and loss of each segment."""
    if not contents.metrics:
        return not_run(
            "training",
            "Training",
            f"no {RunFiles.MODELS}/*/ step logs: run `cotforge train sft` / `train awdpo`",
        )
    figures, empty = [], []
    for name, rows in contents.metrics.items():
        figure = training_figure(name, rows, dpi)
        if figure is None:
            empty.append(name)
        else:
            figures.append(figure)
    note = f"no logged steps for {', '.join(empty)}" if empty else ""
    if not figures:
        return Section(key="training", title="Training", status="not run", note=note)
    return Section(key="training", title="Training", note=note, figures=figures)


def eval_section(evaluation: EvalSummary | None, dpi: int) -> Section:
    """Attack success per tactic and over-refusal per model, from ``eval/results.json``."""
    if evaluation is None or not evaluation.models:
        return not_run("eval", "Evaluation", f"no {EVAL_RESULTS}: run `cotforge eval`")
    figures = []
    asr = evaluation.attack_success_by_tactic()
    if any(asr.values()):
        figures.append(
            Figure(name="eval_attack_success", caption="Attack success rate per tactic (lower is safer)",
                   png=charts.grouped_bars(asr, "Attack success rate per tactic", "attack success rate",
                                           ylim=(0, 1), dpi=dpi))
        )  # fmt: skip
    overall = {
        label: {name: value for name, value in (("attack success", m.attack_success_rate),
                                                ("over-refusal", m.over_refusal_rate),
                                                ("unsplit", m.unsplit_rate)) if value is not None}
        for label, m in evaluation.models.items()
    }  # fmt: skip
    values, spans = suite_rates({label: m.model_dump() for label, m in evaluation.models.items()})
    if values:
        figures.append(
            Figure(name="eval_suites", caption="Attack success and refusal rate per suite, 95% bootstrap intervals",
                   png=charts.grouped_bars(values, "Rates per suite", "rate", ylim=(0, 1), dpi=dpi,
                                           intervals=spans))
        )  # fmt: skip
    figures.append(
        Figure(name="eval_overall", caption="Attack success and over-refusal per model (lower is better)",
               png=charts.grouped_bars(overall, "Overall rates per model", "rate", ylim=(0, 1), dpi=dpi))
    )  # fmt: skip
    cells = sorted({c for m in evaluation.models.values() for c in m.per_tactic})
    table = Table(
        title="per tactic (attack success for harmful/jailbreak cells, over-refusal for benign)",
        headers=["cell", *evaluation.models],
        rows=[
            [
                cell,
                *(
                    fmt(m.per_tactic[cell].attack_success_rate if m.per_tactic[cell].attack_success_rate is not None
                        else m.per_tactic[cell].over_refusal_rate) if cell in m.per_tactic else "—"
                    for m in evaluation.models.values()
                ),
            ]
            for cell in cells
        ],
    )  # fmt: skip
    return Section(
        key="eval", title="Evaluation", figures=figures, tables=[table, *_eval_extra_tables(evaluation)]
    )


def _eval_extra_tables(evaluation: EvalSummary) -> list[Table]:
    """The paired comparisons (b − a) and the utility figures, when the eval stage wrote them."""
    tables = []
    if evaluation.comparisons:
        rows = [
            [f"{c['model_b']} − {c['model_a']}", c["metric"], c["key"].get("suite", "all"), str(c["n"]),
             f"{c['difference']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]", f"{c['mcnemar_p']:.3g}"]
            for c in evaluation.comparisons
        ]  # fmt: skip
        tables.append(Table(title="paired comparison (95% paired bootstrap interval, exact McNemar p)",
                            headers=["models", "metric", "suite", "n", "difference", "p"], rows=rows))  # fmt: skip
    utility = {label: m.utility for label, m in evaluation.models.items() if m.utility}
    if utility:
        names = sorted({n for u in utility.values() for n in u})
        rows = [[name, *(fmt(u.get(name)) if name in u else "—" for u in utility.values())] for name in names]
        tables.append(
            Table(title="utility (lm-evaluation-harness)", headers=["task/metric", *utility], rows=rows)
        )
    return tables
