"""Inter-annotator agreement: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha (the ``krippendorff``
package). Pure functions.

Ratings are ``{item: {rater: value}}``; an item rated by fewer than two raters carries no agreement
information and is left out. A statistic whose chance agreement is total (every rating in one category) is
undefined and returned as ``None`` rather than a misleading number.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Ratings = Mapping[str, Mapping[str, Any]]
Level = Literal["nominal", "ordinal", "interval"]


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa for two raters from (rater A value, rater B value) pairs."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[k] * second[k] for k in first) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def fleiss_kappa_from_counts(table: Sequence[Mapping[Hashable, int]]) -> float | None:
    """Fleiss' kappa from per-item category counts (``[{category: raters}]``).

    Items may have different numbers of raters (each item's agreement uses its own count; category shares
    are pooled over all ratings); with a constant number it is exactly Fleiss (1971).
    """
    rows = [row for row in table if sum(row.values()) >= 2]
    if not rows:
        return None
    per_item = []
    totals: Counter[Hashable] = Counter()
    for row in rows:
        n_i = sum(row.values())
        per_item.append((sum(c * c for c in row.values()) - n_i) / (n_i * (n_i - 1)))
        totals.update(row)
    mean_agreement = sum(per_item) / len(per_item)
    grand = sum(totals.values())
    expected = sum((c / grand) ** 2 for c in totals.values())
    if expected >= 1.0:
        return None
    return (mean_agreement - expected) / (1.0 - expected)


def _units(ratings: Ratings) -> list[list[Any]]:
    units = [[v for v in by_rater.values() if v is not None] for by_rater in ratings.values()]
    return [u for u in units if len(u) >= 2]


def fleiss_kappa(ratings: Ratings) -> float | None:
    """Fleiss' kappa over ``{item: {rater: category}}``."""
    return fleiss_kappa_from_counts([Counter(u) for u in _units(ratings)])


def percent_agreement(ratings: Ratings) -> float | None:
    """Mean share of agreeing rater pairs per item."""
    units = _units(ratings)
    if not units:
        return None
    shares = []
    for unit in units:
        pairs = list(itertools.combinations(unit, 2))
        shares.append(sum(a == b for a, b in pairs) / len(pairs))
    return sum(shares) / len(shares)


def krippendorff_alpha(ratings: Ratings, level: Level = "nominal") -> float | None:
    """Krippendorff's alpha (nominal, ordinal or interval) over ``{item: {rater: value}}``; missing allowed.

    Computed by the ``krippendorff`` package; nominal values of any kind are coded as integers first.
    ``None`` when undefined (no item with two ratings, or every rating the same value).
    """
    import krippendorff
    import numpy as np

    units = {
        item: by_rater
        for item, by_rater in ratings.items()
        if sum(v is not None for v in by_rater.values()) >= 2
    }
    if not units:
        return None
    raters = sorted({r for by_rater in units.values() for r in by_rater})
    values = sorted({v for by_rater in units.values() for v in by_rater.values() if v is not None}, key=repr)
    if len(values) < 2:
        return None
    code = {v: float(i) for i, v in enumerate(values)}
    data = np.full((len(raters), len(units)), np.nan)
    for j, by_rater in enumerate(units.values()):
        for i, rater in enumerate(raters):
            value = by_rater.get(rater)
            if value is not None:
                data[i, j] = code[value] if level == "nominal" else float(value)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


class QuestionAgreement(BaseModel):
    """Agreement on one question, as printed and stored in the ``review-pull`` manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str
    level: Literal["nominal", "ordinal"]
    items: int = Field(description="Items rated by at least two raters.")
    raters: int
    ratings: int
    percent_agreement: float | None
    cohen_kappa: dict[str, float | None] = Field(description="Per rater pair 'a|b', over items both rated.")
    cohen_kappa_mean: float | None
    fleiss_kappa: float | None
    krippendorff_alpha: dict[str, float | None] = Field(description="By measurement level.")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def agreement_report(
    question: str, ratings: Ratings, level: Literal["nominal", "ordinal"]
) -> QuestionAgreement:
    """All statistics for one question; ``ordinal`` questions (the 1–5 rating) also get interval alpha."""
    raters = sorted({r for by_rater in ratings.values() for r in by_rater})
    pairwise: dict[str, float | None] = {}
    for a, b in itertools.combinations(raters, 2):
        pairs = [(v[a], v[b]) for v in ratings.values() if v.get(a) is not None and v.get(b) is not None]
        if pairs:
            pairwise[f"{a}|{b}"] = _round(cohen_kappa(pairs))
    defined = [k for k in pairwise.values() if k is not None]
    alphas = {"nominal": _round(krippendorff_alpha(ratings, "nominal"))}
    if level == "ordinal":
        alphas["ordinal"] = _round(krippendorff_alpha(ratings, "ordinal"))
        alphas["interval"] = _round(krippendorff_alpha(ratings, "interval"))
    return QuestionAgreement(
        question=question,
        level=level,
        items=len(_units(ratings)),
        raters=len(raters),
        ratings=sum(1 for by_rater in ratings.values() for v in by_rater.values() if v is not None),
        percent_agreement=_round(percent_agreement(ratings)),
        cohen_kappa=pairwise,
        cohen_kappa_mean=_round(sum(defined) / len(defined)) if defined else None,
        fleiss_kappa=_round(fleiss_kappa(ratings)),
        krippendorff_alpha=alphas,
    )
