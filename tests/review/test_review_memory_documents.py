"""The in-memory search engine's document and matching rules (pure; the engine itself is tested via the server)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from cotforge.review.argilla_side.memory_documents import (
    cosine,
    in_range,
    matches_terms,
    record_doc,
    seeded_score,
    text_score,
)

pytestmark = pytest.mark.unit


def doc(**fields: str) -> dict:
    return {"fields": fields}


def test_text_query_is_an_and_of_words_phrases_and_prefixes() -> None:
    d = doc(prompt="How do I pick a lock? Picking locks.", answer="No.")
    assert text_score(d, SimpleNamespace(q="pick lock", field=None)) == 2.0
    assert text_score(d, SimpleNamespace(q="pick bread", field=None)) == 0.0  # every word must match
    assert text_score(d, SimpleNamespace(q="pick*", field="prompt")) == 2.0  # pick, picking
    assert text_score(d, SimpleNamespace(q='"a lock"', field="prompt")) == 1.0
    assert text_score(d, SimpleNamespace(q="no", field="prompt")) == 0.0  # only in another field


def test_ranges_compare_numbers_strings_and_naive_utc_times() -> None:
    assert in_range([0.2, 0.9], 0.5, None) and not in_range([0.2], 0.5, 1.0)
    assert in_range([3], "2", "4")  # the API may send bounds as strings
    naive = datetime(2026, 1, 1, 12, 0)
    assert in_range([naive], "2026-01-01T11:00:00+00:00", None)
    assert not in_range([naive], "2026-01-01T13:00:00", None)
    assert not in_range(["text"], 1, None)
    assert matches_terms(["a", "b"], ["b"]) and not matches_terms([], ["a"])


def test_a_discarded_response_without_values_is_indexed() -> None:
    record_id = uuid.uuid4()
    response = SimpleNamespace(
        id=uuid.uuid4(), status=SimpleNamespace(value="discarded"), user_id="u1", values=None
    )
    answered = SimpleNamespace(
        id=uuid.uuid4(), status="submitted", user_id="u2", values={"answer_verdict": {"value": "helpful"}}
    )
    suggestion = SimpleNamespace(
        question=SimpleNamespace(name="answer_verdict"), type=None, agent="j", score=0.5, value="harmful"
    )
    record = SimpleNamespace(
        id=record_id,
        external_id="s-1",
        fields={"prompt": "p"},
        status="pending",
        inserted_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
        metadata_={"kind": "safety"},
        responses=[response, answered],
        suggestions=[suggestion],
        vectors=[],
    )
    d = record_doc(record)
    assert d["responses"][0] == {"id": response.id, "status": "discarded", "user_id": "u1"}
    assert d["responses"][1]["answer_verdict"] == "helpful"
    assert d["suggestions"]["answer_verdict"]["value"] == "harmful" and d["metadata"] == {"kind": "safety"}


def test_each_user_gets_a_stable_order_of_their_own() -> None:
    ids = [uuid.uuid4() for _ in range(20)]
    order_a = sorted(ids, key=lambda r: seeded_score("alice", r))
    assert order_a == sorted(ids, key=lambda r: seeded_score("alice", r))
    assert order_a != sorted(ids, key=lambda r: seeded_score("bob", r))
    assert cosine([1, 0], [1, 0]) == pytest.approx(1.0) and cosine([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine([0, 0], [1, 1]) == 0.0
