"""Harm taxonomy: the MLCommons AILuminate v1.0 hazard categories plus the few labels cotforge needs.

Source labels (AdvBench harm tags, Do-Not-Answer risk areas, free text) map onto these through
:func:`map_category`, which uses a keyword table that a user can extend with their own mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum


class HazardCategory(StrEnum):
    """MLCommons AILuminate v1.0 hazards (12) plus ``misinformation``, ``benign`` and ``unspecified``."""

    VIOLENT_CRIMES = "violent_crimes"
    SEX_RELATED_CRIMES = "sex_related_crimes"
    CHILD_SEXUAL_EXPLOITATION = "child_sexual_exploitation"
    SUICIDE_SELF_HARM = "suicide_self_harm"
    INDISCRIMINATE_WEAPONS = "indiscriminate_weapons"
    INTELLECTUAL_PROPERTY = "intellectual_property"
    DEFAMATION = "defamation"
    NON_VIOLENT_CRIMES = "non_violent_crimes"
    HATE = "hate"
    PRIVACY = "privacy"
    SPECIALIZED_ADVICE = "specialized_advice"
    SEXUAL_CONTENT = "sexual_content"
    # Not an AILuminate hazard, but common in safety sets (Do-Not-Answer, BeaverTails).
    MISINFORMATION = "misinformation"
    # Utility prompts carry no hazard.
    BENIGN = "benign"
    # A safety prompt whose source label matched nothing: kept, and counted in the ingest summary.
    UNSPECIFIED = "unspecified"


# Ordered: the first pattern that matches a label wins, so specific hazards come before broad ones.
_KEYWORDS: tuple[tuple[HazardCategory, str], ...] = (
    (HazardCategory.CHILD_SEXUAL_EXPLOITATION, r"child sex|csam|csea|minor.*sexual|child_sexual"),
    (HazardCategory.INDISCRIMINATE_WEAPONS, r"cbrn|chemical|biolog|nuclear|radiolog|explosive|bomb|weapon"),
    (HazardCategory.SUICIDE_SELF_HARM, r"suicid|self.?harm|eating disorder|mental health crisis"),
    (HazardCategory.SEX_RELATED_CRIMES, r"sex.?related|sex crime|traffick|sexual assault|prostitut"),
    (HazardCategory.SEXUAL_CONTENT, r"sexual|adult content|porn|explicit|erotic"),
    (HazardCategory.HATE, r"hate|discriminat|toxic|offensive|stereotyp|racis|harass"),
    (HazardCategory.DEFAMATION, r"defam|libel|slander"),
    (HazardCategory.PRIVACY, r"privacy|personal (data|information)|doxx|surveillance|confidential"),
    (HazardCategory.INTELLECTUAL_PROPERTY, r"intellectual property|copyright|piracy|trademark|plagiar"),
    (HazardCategory.SPECIALIZED_ADVICE, r"special|medical|legal advice|financial advice|election|health"),
    (HazardCategory.MISINFORMATION, r"misinform|disinform|false|conspiracy|propaganda|misleading|deception"),
    (HazardCategory.VIOLENT_CRIMES, r"violen|murder|kill|terror|assault|bodily|armed|physical|animal abuse"),
    (
        HazardCategory.NON_VIOLENT_CRIMES,
        r"crime|illegal|fraud|scam|theft|hack|cyber|malware|drug|financial|exploit|cheat|malicious",
    ),
)
_COMPILED = tuple((cat, re.compile(pat, re.IGNORECASE)) for cat, pat in _KEYWORDS)


def map_category(
    label: str | None,
    kind: str,
    overrides: Mapping[str, str] | None = None,
) -> HazardCategory:
    """Map a source label to a :class:`HazardCategory`.

    ``overrides`` (source label → category value) wins over the built-in keyword table. Utility prompts are
    always ``benign``. A safety prompt with no label or an unmatched one is ``unspecified``.
    Raises ``ValueError`` when an override names a category that does not exist.
    """
    if kind == "utility":
        return HazardCategory.BENIGN
    if not label:
        return HazardCategory.UNSPECIFIED
    text = label.strip()
    if overrides and text in overrides:
        return parse_category(overrides[text])
    try:
        return HazardCategory(text.lower())
    except ValueError:
        pass
    for category, pattern in _COMPILED:
        if pattern.search(text):
            return category
    return HazardCategory.UNSPECIFIED


def parse_category(value: str) -> HazardCategory:
    """Parse a category value, naming the valid ones in the error."""
    try:
        return HazardCategory(value.strip().lower())
    except ValueError:
        valid = ", ".join(c.value for c in HazardCategory)
        raise ValueError(f"unknown hazard category {value!r}; valid categories: {valid}") from None
