"""`bench-eval`: scoring and statistics of a warm-cache evaluation — 1,000 items × 2 models, CPU time, one core.

The cache-warm case: every answer and judge reply is already cached, so what is left is the eval stage's own
code from outputs on: splitting, the rule judge, the refusal detector and the three-way outcome (scoring,
`cotforge.evaluation.scoring`), and every figure the stage writes (`cotforge.evaluation.results`: results.json
per model with 95% bootstrap intervals, 2,000 resamples; cells per suite × source/category/tactic; the paired
comparison overall and per suite, paired bootstrap + exact McNemar). Scoring
alone, statistics alone and the whole are timed side by side, alternating, fastest of ``ROUNDS``; the
statistics are also timed with a plain item-index bootstrap for reference. The last lines are
``items_per_s`` (model-items scored and summarised per CPU second) and ``ratio_vs_target`` (against 2,000/s).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cotforge.evaluation.items import DEFAULT_TACTICS, EvalItem
from cotforge.evaluation.results import GROUPINGS as STAGE_GROUPINGS
from cotforge.evaluation.results import all_cells, comparisons, model_results
from cotforge.evaluation.scoring import rule_judgement, scored_item
from cotforge.evaluation.statistics import ScoredItem, summarize
from cotforge.evaluation.suites import SuiteItem
from cotforge.generation.refusal import RefusalDetector
from cotforge.runfolder import gc_paused

ITEMS = 1_000
MODELS = ("base", "awdpo")
ROUNDS = 7
TARGET = 2_000.0
THRESHOLD = 0.5
# The reference bootstrap resamples the same cells the stage writes: per-model totals and results.GROUPINGS.
GROUPINGS: tuple[tuple[str, ...], ...] = ((), ("suite",), *STAGE_GROUPINGS)
SUITES = ("bundled", "harmbench", "strongreject", "xstest", "jailbreakbench")
CATEGORIES = (
    "cyber",
    "weapons",
    "fraud",
    "hate",
    "self_harm",
    "privacy",
    "sexual",
    "drugs",
    "misinfo",
    "benign",
)
TACTICS = ("direct", *DEFAULT_TACTICS)


@dataclass(frozen=True)
class Answer:
    """What the cache holds for one model's answer to one item: the item asked and the text answered."""

    model: str
    item: EvalItem
    text: str


REFUSALS = (
    "I can't help with that. It could hurt people.",
    "I will not provide that. Please talk to a professional instead.",
)
COMPLIANCE = (
    "Sure. Step 1: gather the materials. Step 2: follow the procedure carefully.",
    "Here is how to do it: first open the tool, then run the command and check the result.",
)


def answers(seed: int = 0) -> list[Answer]:
    """Synthetic outputs: the second model refuses more; about a tenth skip the reasoning."""
    rng = random.Random(seed)
    out = []
    for i in range(ITEMS):
        suite = SUITES[i % len(SUITES)]
        expected = "comply" if suite == "xstest" and i % 2 else "refuse"
        category = "benign" if expected == "comply" else rng.choice((*CATEGORIES[:-1], None))
        tactic = TACTICS[i % len(TACTICS)] if expected == "refuse" else "direct"
        prompt = f"Request number {i} about {category or 'something'}."
        item = SuiteItem(suite=suite, id=f"{suite}-{i}", prompt=prompt, expected=expected, category=category,
                         source=suite)  # fmt: skip
        eval_item = EvalItem(item=item, tactic=tactic, text=prompt)
        for m, model in enumerate(MODELS):
            refused = rng.random() < (0.55 + 0.2 * m if expected == "refuse" else 0.1 + 0.05 * m)
            answer = rng.choice(REFUSALS if refused else COMPLIANCE)
            reasoning = (
                ""
                if rng.random() < 0.1
                else "<think>\nThe user asks for something; weigh the risk.\n</think>\n"
            )
            out.append(Answer(model, eval_item, reasoning + answer))
    return out


def score(outputs: Sequence[Answer]) -> list[ScoredItem]:
    """Outputs → scored items exactly as the eval stage does once the cache has answered (rule judge)."""
    refuses = RefusalDetector().refuses
    return [
        scored_item(a.model, a.item, a.text, rule_judgement(a.item, a.text), refuses, THRESHOLD)
        for a in outputs
    ]


def statistics_of(items: Sequence[ScoredItem]) -> int:
    """Every figure the eval stage writes: results.json per model, cells.json, comparison.json."""
    figures = 0
    for model in MODELS:
        mine = [i for i in items if i.model == model]
        figures += len(model_results(model, model, mine, Counter(), {}, resamples=2_000)["per_suite"])
    figures += len(all_cells(items, resamples=2_000))
    figures += len(comparisons(items, list(MODELS), None, resamples=2_000))
    return figures


def index_bootstrap_statistics(items: Sequence[ScoredItem], resamples: int = 2_000) -> int:
    """The reference: the same summaries' rates by resampling item indices (a resamples × n matrix per rate)."""
    rng = np.random.default_rng(0)
    figures = 0
    for by in GROUPINGS:
        cells: dict[tuple[str, ...], list[ScoredItem]] = {}
        for item in items:
            cells.setdefault((item.model, *(str(getattr(item, f)) for f in by)), []).append(item)
        for cell in cells.values():
            for flags in (
                [i.outcome == "complied_harmful" for i in cell if i.expected == "refuse"],
                [i.outcome == "refused" for i in cell if i.expected == "comply"],
                [
                    not i.reasoning_harmful and i.answer_harmful
                    for i in cell
                    if i.reasoning_harmful is not None
                ],
            ):
                if flags:
                    values = np.asarray(flags)
                    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
                    np.quantile(means, [0.025, 0.975])
                    figures += 1
    return figures


def library_checks(items: Sequence[ScoredItem]) -> dict[str, tuple[float, float, int]]:
    """The project's exact McNemar test and Cohen's κ against scipy and scikit-learn on this run's figures.

    McNemar: every paired comparison the stage writes (its discordant counts), own vs ``scipy.stats.binomtest``.
    κ: the two models' refusal outcome on each suite × tactic cell, own vs ``sklearn.metrics.cohen_kappa_score``.
    Returns ``{name: (own µs per call, library µs per call, calls)}``; raises if any value differs.
    """
    from scipy.stats import binomtest
    from sklearn.metrics import cohen_kappa_score

    from cotforge.evaluation.statistics import mcnemar_exact
    from cotforge.review.agreement import cohen_kappa

    paired = comparisons(items, list(MODELS), None, resamples=200)
    counts = [(c.a_only, c.b_only) for c in paired if c.a_only + c.b_only]
    tests = [[True] * a + [False] * b for a, b in counts]
    flips = [[False] * a + [True] * b for a, b in counts]
    cells: dict[tuple[str, str], dict[str, list[bool]]] = {}
    for item in sorted(items, key=lambda i: (i.suite, i.tactic, i.item_id, i.model)):
        cells.setdefault((item.suite, item.tactic), {}).setdefault(item.model, []).append(
            item.outcome == "refused"
        )
    label_pairs = [(c[MODELS[0]], c[MODELS[1]]) for c in cells.values() if len(c) == 2]
    own_p = [mcnemar_exact(a, b) for a, b in zip(tests, flips, strict=True)]
    lib_p = [min(binomtest(min(a, b), a + b, 0.5).pvalue, 1.0) for a, b in counts]
    assert all(abs(x - y) < 1e-12 for x, y in zip(own_p, lib_p, strict=True)), "McNemar differs from scipy"
    own_k = [cohen_kappa(list(zip(a, b, strict=True))) for a, b in label_pairs]
    lib_k = [cohen_kappa_score(a, b) for a, b in label_pairs]
    assert all(x is not None and abs(x - y) < 1e-12 for x, y in zip(own_k, lib_k, strict=True)), "κ differs"
    timed = {
        "mcnemar": (
            cpu_seconds(lambda: [_mcnemar_counts(a, b) for a, b in counts]),
            cpu_seconds(lambda: [binomtest(min(a, b), a + b, 0.5).pvalue for a, b in counts]),
            len(counts),
        ),
        "kappa": (
            cpu_seconds(lambda: [cohen_kappa(list(zip(a, b, strict=True))) for a, b in label_pairs]),
            cpu_seconds(lambda: [cohen_kappa_score(a, b) for a, b in label_pairs]),
            len(label_pairs),
        ),
    }
    return {k: (own / n * 1e6, lib / n * 1e6, n) for k, (own, lib, n) in timed.items()}


def _mcnemar_counts(a_only: int, b_only: int) -> float:
    from cotforge.evaluation.statistics import _mcnemar_from_counts

    return _mcnemar_from_counts(a_only, b_only)


def cpu_seconds(work: Callable[[], object]) -> float:
    # CPU time of this process: the figure is per core, and other work on a shared machine does not blur it.
    t0 = time.process_time()
    with gc_paused():
        work()
    return time.process_time() - t0


def main() -> None:
    outputs = answers()
    items = score(outputs)
    n = len(items)
    print(f"items: {ITEMS} x {len(MODELS)} models = {n} model-items (the eval stage's scoring and figures)")
    print(f"figures per run: {statistics_of(items)} (per-suite results, cells, comparisons)")
    for line in summarize(items, by=[]):
        assert line.attack_success is not None and line.refusal_rate is not None
        asr, ref = line.attack_success, line.refusal_rate
        print(
            f"  {line.model}: attack_success {asr.value:.3f} [{asr.low:.3f}, {asr.high:.3f}], "
            f"refusal_rate {ref.value:.3f} [{ref.low:.3f}, {ref.high:.3f}]"
        )
    times: dict[str, list[float]] = {"scoring": [], "statistics": [], "whole": [], "index_bootstrap": []}
    for _ in range(ROUNDS):  # alternate so machine noise hits every side alike
        times["scoring"].append(cpu_seconds(lambda: score(outputs)))
        times["statistics"].append(cpu_seconds(lambda: statistics_of(items)))
        times["whole"].append(cpu_seconds(lambda: statistics_of(score(outputs))))
        times["index_bootstrap"].append(cpu_seconds(lambda: index_bootstrap_statistics(items)))
    best = {name: min(values) for name, values in times.items()}  # fastest: the least disturbed by other work
    for name, seconds in best.items():
        print(f"{name}: {seconds * 1000:.1f} ms ({n / seconds:,.0f} model-items/s)")
    print(
        f"index-resampling bootstrap (summary rates only) / vectorised statistics (all): {best['index_bootstrap'] / best['statistics']:.1f}x"
    )
    checks = [library_checks(items) for _ in range(ROUNDS)]
    for name, library in (("mcnemar", "scipy.stats.binomtest"), ("kappa", "sklearn cohen_kappa_score")):
        own, lib, calls = min(c[name][0] for c in checks), min(c[name][1] for c in checks), checks[0][name][2]
        print(
            f"{name}: own {own:.1f} µs/call, {library} {lib:.1f} µs/call ({lib / own:.0f}x), equal on {calls}"
        )
    rate = n / best["whole"]
    print(f"items_per_s: {rate:.0f}")
    print(f"ratio_vs_target: {rate / TARGET:.2f}")


if __name__ == "__main__":
    main()
