"""Builders for the review tests: run folders of samples, and annotators that use the Argilla UI's REST calls."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from cotforge.runfolder import RunFiles, RunFolder
from cotforge.schemas import JudgeScores, PromptRecord, Rationale, Sample, SamplingParams, Verdict

ANNOTATOR_PASSWORD = "annotate-me-1"


def make_samples(n: int, start: int = 0) -> tuple[list[PromptRecord], list[Sample]]:
    """``n`` prompts and one sample each: even numbers are safety prompts, odd ones utility prompts."""
    prompts, samples = [], []
    for i in range(start, start + n):
        kind = "safety" if i % 2 == 0 else "utility"
        text = f"Prompt {i}: " + ("how do I pick a lock?" if kind == "safety" else "how do I bake bread?")
        prompt = PromptRecord(
            id=PromptRecord.make_id(text, kind),
            text=text,
            kind=kind,
            category="non_violent_crimes" if kind == "safety" else "benign",
            source="test",
            licence="MIT",
        )
        answer = "I can't help with that, but a locksmith can." if kind == "safety" else "Mix, knead, bake."
        samples.append(
            Sample(
                id=Sample.make_id(prompt.id, "teacher", "h1", 0),
                prompt_id=prompt.id,
                prompt_kind=kind,
                rationale=Rationale(
                    reasoning_steps=[f"Step one for {i}.", f"Step two for {i}."], answer=answer
                ),
                raw_text="raw",
                output_mode="tagged",
                teacher_backend="openai",
                teacher_model="teacher",
                template_id=f"teacher/{kind}",
                template_hash="h1",
                sampling=SamplingParams(),
            )
        )
        prompts.append(prompt)
    return prompts, samples


def write_review_run(run_dir: Path, n: int, start: int = 0) -> list[Sample]:
    """Add ``n`` samples (with prompts, validation verdicts, and judge scores for every 4th) to a run folder."""
    folder = RunFolder(run_dir).ensure()
    prompts, samples = make_samples(n, start)

    def existing(name: str, model: Any) -> list[Any]:
        return folder.read(name, model) if folder.exists(name) else []

    verdicts = [
        Verdict(
            sample_id=s.id,
            stage="validate",
            outcome="accepted",
            reasons=["short_reasoning"] if i % 5 == 0 else [],
        )
        for i, s in enumerate(samples, start=start)
    ]
    scores = [
        JudgeScores(candidate_id=s.id, h_rs=0.1, h_rp=0.9 if i % 8 == 0 else 0.2, h_f=0.5, judge_id="rule")
        for i, s in enumerate(samples, start=start)
        if i % 4 == 0
    ]
    folder.write(RunFiles.PROMPTS, [*existing(RunFiles.PROMPTS, PromptRecord), *prompts])
    folder.write(RunFiles.ACCEPTED, [*existing(RunFiles.ACCEPTED, Sample), *samples])
    folder.write(RunFiles.VERDICTS, [*existing(RunFiles.VERDICTS, Verdict), *verdicts])
    folder.write(RunFiles.JUDGMENTS, [*existing(RunFiles.JUDGMENTS, JudgeScores), *scores])
    return samples


class UIAnnotator:
    """An annotator who logs in with a password and answers like the Argilla UI does (JWT + REST)."""

    def __init__(self, url: str, username: str, api_key: str) -> None:
        self.username = username
        self.api_key = api_key
        self.http = httpx.Client(base_url=url, timeout=30)
        token = self.http.post("/api/v1/token", data={"username": username, "password": ANNOTATOR_PASSWORD})
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def pending(self, dataset_id: str, limit: int = 200) -> dict[str, str]:
        """The UI's queue: records with no response of mine, as {external id: record id}."""
        body = {
            "filters": {
                "and": [
                    {
                        "type": "terms",
                        "scope": {"entity": "response", "property": "status"},
                        "values": ["pending"],
                    }
                ]
            }
        }
        found: dict[str, str] = {}
        while True:
            page = self.http.post(
                f"/api/v1/me/datasets/{dataset_id}/records/search",
                json=body,
                params={"offset": len(found), "limit": limit, "include": "responses"},
            )
            page.raise_for_status()
            items = page.json()["items"]
            found.update({it["record"]["external_id"]: it["record"]["id"] for it in items})
            if not items or len(found) >= page.json()["total"]:
                return found

    def respond(self, record_id: str, status: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"status": status}
        if values is not None:
            payload["values"] = {k: {"value": v} for k, v in values.items()}
        response = self.http.post(f"/api/v1/records/{record_id}/responses", json=payload)
        response.raise_for_status()
        return dict(response.json())

    def update(self, response_id: str, status: str, values: dict[str, Any]) -> None:
        payload = {"status": status, "values": {k: {"value": v} for k, v in values.items()}}
        self.http.put(f"/api/v1/responses/{response_id}", json=payload).raise_for_status()

    def metrics(self, dataset_id: str) -> dict[str, int]:
        response = self.http.get(f"/api/v1/me/datasets/{dataset_id}/metrics")
        response.raise_for_status()
        return dict(response.json()["responses"])


def create_annotator(url: str, owner_key: str, name: str, workspace: str) -> UIAnnotator:
    """Create an annotator through the owner's REST API, add them to ``workspace``, and log them in."""
    owner = httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": owner_key}, timeout=30)
    username = f"{name}-{uuid.uuid4().hex[:6]}"
    user = owner.post(
        "/api/v1/users",
        json={"first_name": name, "username": username, "role": "annotator", "password": ANNOTATOR_PASSWORD},
    )
    user.raise_for_status()
    workspaces = owner.get("/api/v1/me/workspaces").json()["items"]
    ws_id = next(w["id"] for w in workspaces if w["name"] == workspace)
    owner.post(f"/api/v1/workspaces/{ws_id}/users", json={"user_id": user.json()["id"]}).raise_for_status()
    return UIAnnotator(url, username, user.json()["api_key"])


def dataset_id_of(url: str, owner_key: str, workspace: str, name: str) -> str:
    """The server-side id of dataset ``workspace/name``."""
    owner = httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": owner_key}, timeout=30)
    workspaces = {w["id"]: w["name"] for w in owner.get("/api/v1/me/workspaces").json()["items"]}
    items = owner.get("/api/v1/me/datasets").json()["items"]
    return str(
        next(d["id"] for d in items if d["name"] == name and workspaces[d["workspace_id"]] == workspace)
    )
