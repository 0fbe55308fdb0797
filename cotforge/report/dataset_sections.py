"""Report sections about the data: overview, prompts, rationales, validation, review, rejects. Pure.

Each function takes the run's typed contents and returns a :class:`Section`; a stage that left no files
gives a ``not run`` section that names the command to run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from cotforge import charts
from cotforge.release.provenance import OUTPUT_STAGES, review_statistics
from cotforge.release.run_contents import RunContents
from cotforge.report.section import Figure, Section, Table, fmt, not_run
from cotforge.runfolder import RunFiles


def _ordered(counter: Counter[str], limit: int = 25) -> dict[str, int]:
    return dict(counter.most_common(limit))


def overview_section(contents: RunContents, dpi: int) -> Section:
    """How many records each stage kept, the pipeline, and each stage's status."""
    _, training = contents.training_samples()
    funnel = {
        "prompts": len(contents.prompts),
        "variants": len(contents.augmented),
        "samples": len(contents.samples),
        "accepted": len(contents.accepted),
        "reviewed": len(training) if contents.has(RunFiles.REVIEWED) else 0,
        "candidates": len(contents.candidates),
        "judged": len(contents.judgments),
        "pairs": len(contents.pairs),
    }
    tables = []
    if contents.pipeline is not None:
        tables.append(
            Table(
                title=f"pipeline {contents.pipeline.name} (config hash {contents.pipeline.config_hash[:16]})",
                headers=["step", "status"],
                rows=[[s, st] for s, st in contents.pipeline.steps.items()],
            )
        )
    stages = {s: m for s, m in contents.manifests.items() if s not in OUTPUT_STAGES}
    if stages:
        tables.append(
            Table(
                title="stage manifests",
                headers=["stage", "status", "seconds", "counts"],
                rows=[
                    [s, m.status, fmt(m.duration_s), ", ".join(f"{k} {v}" for k, v in m.counts.items())]
                    for s, m in sorted(stages.items(), key=lambda kv: kv[1].started_at)
                ],
            )
        )
    if contents.skipped_manifests:
        tables.append(
            Table(
                title="files in manifests/ that are not stage manifests",
                headers=["file", "why"],
                rows=[[k, v] for k, v in contents.skipped_manifests.items()],
            )
        )
    if not any(funnel.values()) and not tables:
        return not_run("overview", "Overview", "the run folder holds no stage outputs yet")
    figures = [Figure(name="overview_funnel", caption="Records at each stage",
                      png=charts.bar_chart(funnel, "Records kept at each stage", dpi=dpi, horizontal=False))]  # fmt: skip
    return Section(key="overview", title="Overview", figures=figures, tables=tables)


def prompts_section(contents: RunContents, dpi: int) -> Section:
    """Prompts by kind, hazard category, source and (variants) jailbreak tactic."""
    if not contents.prompts and not contents.augmented:
        return not_run("prompts", "Prompts", f"no {RunFiles.PROMPTS}: run `cotforge ingest`")
    everything = [*contents.prompts, *contents.augmented]
    figures = [
        Figure(name="prompts_by_kind", caption="Prompts by kind (originals and variants)",
               png=charts.bar_chart(_ordered(Counter(p.kind for p in everything)), "Prompts by kind", dpi=dpi)),
        Figure(name="prompts_by_category", caption="Prompts by hazard category",
               png=charts.bar_chart(_ordered(Counter(str(p.category) for p in everything)),
                                    "Prompts by hazard category", dpi=dpi, horizontal=True)),
        Figure(name="prompts_by_source", caption="Original prompts by source",
               png=charts.bar_chart(_ordered(Counter(p.source for p in contents.prompts)),
                                    "Prompts by source", dpi=dpi, horizontal=True)),
    ]  # fmt: skip
    note = ""
    if contents.augmented:
        tactics = Counter(p.tactic or "untagged" for p in contents.augmented)
        figures.append(
            Figure(name="prompts_by_tactic", caption="Jailbreak-style variants by tactic",
                   png=charts.bar_chart(_ordered(tactics), "Variants by tactic", dpi=dpi, horizontal=True))
        )  # fmt: skip
    else:
        note = "augment not run: no jailbreak variants"
    return Section(key="prompts", title="Prompts", note=note, figures=figures)


def rationales_section(contents: RunContents, dpi: int) -> Section:
    """Lengths of the teacher's rationales: steps, reasoning and answer characters, by prompt kind."""
    name, training = contents.training_samples()
    samples = training or contents.samples
    if not samples:
        return not_run("rationales", "Rationales", f"no {RunFiles.SAMPLES}: run `cotforge generate`")
    kinds: list[str] = sorted({s.prompt_kind for s in samples})
    steps = {
        k: [float(len(s.rationale.reasoning_steps)) for s in samples if s.prompt_kind == k] for k in kinds
    }
    reasoning = {k: [float(len(s.rationale.reasoning)) for s in samples if s.prompt_kind == k] for k in kinds}
    answer = {k: [float(len(s.rationale.answer)) for s in samples if s.prompt_kind == k] for k in kinds}
    figures = [
        Figure(name="rationale_steps", caption="Reasoning steps per rationale",
               png=charts.histograms(steps, "Reasoning steps per rationale", "steps", bins=12, dpi=dpi)),
        Figure(name="rationale_reasoning_chars", caption="Reasoning length (characters)",
               png=charts.histograms(reasoning, "Reasoning length", "characters", dpi=dpi)),
        Figure(name="rationale_answer_chars", caption="Answer length (characters)",
               png=charts.histograms(answer, "Answer length", "characters", dpi=dpi)),
    ]  # fmt: skip
    return Section(
        key="rationales",
        title="Rationales",
        note=f"from {name or RunFiles.SAMPLES} ({len(samples)} samples)",
        figures=figures,
    )


def _reasons(records: Iterable[tuple[str, list[str]]]) -> Counter[str]:
    return Counter(
        r for outcome, reasons in records if outcome != "accepted" for r in reasons or ["unspecified"]
    )


def validation_section(contents: RunContents, dpi: int) -> Section:
    """Validation outcomes and why samples (and teacher outputs that never parsed) were rejected."""
    generation = contents.rejects.get(RunFiles.GENERATE_REJECTS, [])
    if not contents.verdicts and not generation:
        return not_run("validation", "Validation", f"no {RunFiles.VERDICTS}: run `cotforge validate`")
    reasons = _reasons((v.outcome, list(v.reasons)) for v in contents.verdicts)
    reasons.update(f"generate: {r}" for rec in generation for r in rec.reasons)
    outcomes: Counter[str] = Counter(str(v.outcome) for v in contents.verdicts)
    if generation:
        outcomes["unparsed (generate)"] += len(generation)
    figures = [
        Figure(name="validation_outcomes", caption="Validation outcomes",
               png=charts.bar_chart(_ordered(outcomes), "Validation outcomes", dpi=dpi)),
    ]  # fmt: skip
    if reasons:
        figures.append(
            Figure(name="validation_reject_reasons", caption="Validation reject reasons",
                   png=charts.bar_chart(_ordered(reasons), "Reject reasons", dpi=dpi, horizontal=True))
        )  # fmt: skip
    return Section(
        key="validation", title="Validation", figures=figures, note="" if reasons else "nothing was rejected"
    )


def review_section(contents: RunContents, dpi: int) -> Section:
    """Review decisions, their reasons, and agreement between reviewers per question."""
    stats = review_statistics(contents)
    if stats is None:
        return not_run("review", "Review", f"no {RunFiles.REVIEW_VERDICTS}: run `cotforge review`")
    figures = [
        Figure(name="review_outcomes", caption=f"Review outcomes ({stats.mode})",
               png=charts.bar_chart(stats.outcomes, f"Review outcomes ({stats.mode} review)", dpi=dpi)),
    ]  # fmt: skip
    if stats.reasons:
        figures.append(
            Figure(name="review_reasons", caption="Reasons for rejections and corrections",
                   png=charts.bar_chart(stats.reasons, "Review reasons", dpi=dpi, horizontal=True))
        )  # fmt: skip
    tables, note = [], f"{stats.reviewers} reviewer(s)"
    if stats.agreement:
        metrics = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha")
        groups = {m: {q: a.get(m) or 0.0 for q, a in stats.agreement.items()} for m in metrics}
        figures.append(
            Figure(name="review_agreement", caption="Agreement between reviewers per question",
                   png=charts.grouped_bars(groups, "Reviewer agreement", "agreement", ylim=(-1, 1), dpi=dpi))
        )  # fmt: skip
        tables.append(
            Table(
                title="agreement",
                headers=["question", *metrics],
                rows=[[q, *(fmt(a.get(m)) for m in metrics)] for q, a in stats.agreement.items()],
            )
        )
    else:
        note += "; agreement not computed (automatic review or a single reviewer)"
    return Section(key="review", title="Review", note=note, figures=figures, tables=tables)


def rejects_section(contents: RunContents, dpi: int) -> Section:
    """Every ``*.rejects.jsonl``: how many per file, the reasons, and the first few records."""
    if not contents.rejects:
        return not_run("rejects", "Rejects", "no *.rejects.jsonl in the run folder")
    per_file = {name: len(records) for name, records in contents.rejects.items()}
    reasons = Counter(
        f"{r.stage}: {reason}" for rs in contents.rejects.values() for r in rs for reason in r.reasons
    )
    figures = [
        Figure(name="rejects_by_file", caption="Rejected records per file",
               png=charts.bar_chart(per_file, "Rejects per file", dpi=dpi, horizontal=True)),
    ]  # fmt: skip
    if reasons:
        figures.append(
            Figure(name="rejects_by_reason", caption="Reject reasons by stage",
                   png=charts.bar_chart(_ordered(reasons), "Reject reasons", dpi=dpi, horizontal=True))
        )  # fmt: skip
    sample = [
        [name, fmt(r.line), r.record_id or "—", ", ".join(r.reasons), r.message[:160]]
        for name, rs in contents.rejects.items()
        for r in rs[:5]
    ]
    table = Table(title="first rejects of each file", headers=["file", "line", "record", "reasons", "message"],
                  rows=sample)  # fmt: skip
    return Section(key="rejects", title="Rejects", figures=figures, tables=[table])
