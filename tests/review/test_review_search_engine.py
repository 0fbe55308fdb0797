"""The in-memory search engine behind the UI's searches, filters, sorting and metrics (real server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from review_builders import UIAnnotator, dataset_id_of, write_review_run

from cotforge.review.push import ReviewPushConfig
from cotforge.review.server import ReviewServer
from cotforge.review.stage import push_to_argilla

pytestmark = pytest.mark.integration


def test_ui_searches_filters_sorting_and_metrics(
    argilla_env: ReviewServer,
    dataset_name: str,
    make_annotator: Callable[[str, str], UIAnnotator],
    run_dir: Path,
) -> None:
    samples = write_review_run(run_dir, 40)  # judged: every 4th; judged harmful answer: every 8th
    push_to_argilla(run_dir, ReviewPushConfig(workspace="search", dataset=dataset_name, progress=False))
    dataset_id = dataset_id_of(argilla_env.url, argilla_env.api_key, "search", dataset_name)
    owner = httpx.Client(
        base_url=argilla_env.url, headers={"X-Argilla-Api-Key": argilla_env.api_key}, timeout=30
    )
    ids = {s.id: i for i, s in enumerate(samples)}

    def search(body: dict[str, Any], limit: int = 100) -> list[int]:
        found = owner.post(
            f"/api/v1/datasets/{dataset_id}/records/search", json=body, params={"limit": limit}
        )
        found.raise_for_status()
        assert found.json()["total"] >= len(found.json()["items"])
        return [ids[item["record"]["external_id"]] for item in found.json()["items"]]

    def terms(scope: dict[str, Any], *values: str) -> dict[str, Any]:
        return {"filters": {"and": [{"type": "terms", "scope": scope, "values": list(values)}]}}

    kind = {"entity": "metadata", "metadata_property": "kind"}
    assert sorted(search(terms(kind, "safety"))) == list(range(0, 40, 2))
    harm = {"entity": "metadata", "metadata_property": "judge_h_rp"}
    assert sorted(search({"filters": {"and": [{"type": "range", "scope": harm, "ge": 0.5}]}})) == [
        0,
        8,
        16,
        24,
        32,
    ]
    suggested = {"entity": "suggestion", "question": "answer_verdict", "property": "value"}
    assert sorted(search(terms(suggested, "harmful"))) == [0, 8, 16, 24, 32]
    assert search({"query": {"text": {"q": "Prompt 13", "field": "prompt"}}}) == [13]
    assert sorted(search({"query": {"text": {"q": "bread"}}})) == list(range(1, 40, 2))
    by_harm = {"sort": [{"scope": harm, "order": "desc"}], **terms(kind, "safety")}
    assert sorted(search(by_harm)[:5]) == [0, 8, 16, 24, 32]
    assert search(
        {"sort": [{"scope": {"entity": "record", "property": "inserted_at"}, "order": "asc"}]}, limit=3
    ) == [
        0,
        1,
        2,
    ]

    # An annotator's answers become searchable: responses by question value and by status.
    ann = make_annotator("ann", "search")
    queue = ann.pending(dataset_id)
    for i in (3, 5):
        values = {"reasoning_quality": 1, "answer_verdict": "over_refusal", "consistency": "consistent"}
        ann.respond(queue[samples[i].id], "submitted", values)
    ann.respond(queue[samples[7].id], "discarded")
    answered = {"entity": "response", "question": "answer_verdict"}
    assert sorted(search(terms(answered, "over_refusal"))) == [3, 5]
    assert sorted(search(terms({"entity": "response", "property": "status"}, "discarded"))) == [7]
    low = {"entity": "response", "question": "reasoning_quality"}
    assert sorted(search({"filters": {"and": [{"type": "range", "scope": low, "le": 2}]}})) == [3, 5]
    assert len(ann.pending(dataset_id)) == 37

    # Metadata metrics (the UI's filter widgets).
    props = owner.get(f"/api/v1/me/datasets/{dataset_id}/metadata-properties").json()["items"]
    prop_id = {p["name"]: p["id"] for p in props}
    kinds = owner.get(f"/api/v1/metadata-properties/{prop_id['kind']}/metrics").json()
    assert {v["term"]: v["count"] for v in kinds["values"]} == {"safety": 20, "utility": 20}
    harms = owner.get(f"/api/v1/metadata-properties/{prop_id['judge_h_rp']}/metrics").json()
    assert (harms["min"], harms["max"]) == (0.2, 0.9)
