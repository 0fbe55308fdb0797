"""Documents of the in-memory search engine: records as dicts, and the matching and scoring rules.

Pure Python with no ``argilla_server`` import, so it is importable (and tested) outside the server venv too.
``memory_engine.py`` builds Argilla's search-engine interface on top of it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

Doc = dict[str, Any]
_WORD = re.compile(r"\w+")
_QUERY_PART = re.compile(r'"([^"]*)"|(\S+)')


def plain(value: Any) -> Any:
    """Enum members as their string values (ES stores the JSON form)."""
    return getattr(value, "value", value)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [plain(v) for v in value] if isinstance(value, list) else [plain(value)]


def word_tokens(value: Any) -> list[str]:
    return _WORD.findall(str(value).lower()) if value is not None else []


def response_doc(response: Any) -> Doc:
    # A discarded response may carry values=None; ES' mapper would crash on it.
    values = response.values or {}
    return {
        "id": response.id,
        "status": plain(response.status),
        "user_id": str(response.user_id),
        **{question: (value or {}).get("value") for question, value in values.items()},
    }


def record_doc(record: Any) -> Doc:
    # Only the attributes the Elasticsearch engine reads, so every caller has them loaded already.
    return {
        "id": record.id,
        "external_id": record.external_id,
        "fields": dict(record.fields or {}),
        "status": plain(record.status),
        "inserted_at": record.inserted_at,
        "updated_at": record.updated_at,
        "metadata": dict(record.metadata_ or {}),
        "responses": [response_doc(r) for r in record.responses or []],
        "suggestions": {
            s.question.name: {"type": plain(s.type), "agent": s.agent, "score": s.score, "value": s.value}
            for s in record.suggestions or []
        },
        "vectors": {str(v.vector_settings_id): list(v.value) for v in record.vectors or []},
    }


def bound(bound: Any, like: Any) -> Any:
    """A range bound as the type of the value it is compared with (the API may send numbers as strings)."""
    if isinstance(bound, str) and isinstance(like, datetime):
        value = datetime.fromisoformat(bound)
        # The database stores naive UTC; a client may send an aware time.
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo and like.tzinfo is None else value
    if isinstance(bound, str) and isinstance(like, int | float):
        return float(bound)
    return bound


def in_range(values: list[Any], ge: Any, le: Any) -> bool:
    for v in values:
        try:
            if (ge is None or v >= bound(ge, v)) and (le is None or v <= bound(le, v)):
                return True
        except (TypeError, ValueError):
            continue
    return False


def matches_terms(values: list[Any], wanted: Iterable[Any]) -> bool:
    wanted_set = {str(plain(w)) for w in wanted}
    return any(str(v) in wanted_set for v in values)


def text_score(doc: Doc, query: Any) -> float:
    """AND of the query's words (``"phrases"`` and ``prefix*`` too); the score counts term hits."""
    fields = doc["fields"]
    names = [query.field] if query.field else list(fields)
    tokens = [t for name in names for t in word_tokens(fields.get(name))]
    if not tokens:
        return 0.0
    joined = " ".join(tokens)
    counts = Counter(tokens)
    score = 0
    for phrase, word in _QUERY_PART.findall(query.q):
        if phrase:
            hits = joined.count(" ".join(word_tokens(phrase)))
        elif word.endswith("*"):
            prefix = word[:-1].lower()
            hits = sum(c for t, c in counts.items() if t.startswith(prefix))
        else:
            hits = sum(counts[t] for t in word_tokens(word))
        if hits == 0:
            return 0.0
        score += hits
    return float(score)


def seeded_score(user_id: Any, record_id: UUID) -> float:
    """A per-user, per-record stable pseudo-random score: each annotator sees their own order (ES does this)."""
    digest = hashlib.sha256(f"{user_id}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def cosine(a: list[float], b: list[float]) -> float:
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    if na == 0 or nb == 0:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=False)) / (na * nb)
