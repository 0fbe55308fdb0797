"""`cotforge review push` of 1,000 samples vs a bare argilla SDK `records.log` of the same records (target ≤ 1.1).

Starts a local review server (Redis + argilla-server, in-memory search engine). Each round pushes into fresh
datasets, cotforge and the SDK in alternating order:

- cotforge: ``push_to_argilla`` end to end — read the run folder, build records and suggestions, create the
  dataset, check which samples are already there, bulk-upsert, write the manifest;
- SDK: create a dataset with the same settings, then ``dataset.records.log`` of the same records (built as
  ``rg.Record`` objects before the clock starts).

Both use batches of 256. Prints per-round seconds, the medians, and last: ``ratio: X`` (cotforge / SDK).
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # the SDK's tqdm bar; must be set before argilla imports tqdm

import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

N_SAMPLES = int(os.environ.get("BENCH_REVIEW_SAMPLES", "1000"))
ROUNDS = int(os.environ.get("BENCH_REVIEW_ROUNDS", "5"))
BATCH = 256


def write_run(run_dir: Path, n: int) -> None:
    from cotforge.runfolder import RunFiles, RunFolder
    from cotforge.schemas import JudgeScores, PromptRecord, Rationale, Sample, SamplingParams, Verdict

    prompts, samples, verdicts, scores = [], [], [], []
    for i in range(n):
        kind = "safety" if i % 2 == 0 else "utility"
        text = f"Benchmark prompt {i}: " + (
            "how do I hurt someone?" if kind == "safety" else "plan a picnic."
        )
        prompt = PromptRecord(
            id=PromptRecord.make_id(text, kind),
            text=text,
            kind=kind,
            category="violent_crimes" if kind == "safety" else "benign",
            source="bench",
            licence="MIT",
        )
        steps = [
            f"Consider what request {i} asks for.",
            "Weigh who could be harmed.",
            "Decide how to answer.",
        ]
        answer = "I won't help with that; here is why." if kind == "safety" else "Pack food, pick a park, go."
        sample = Sample(
            id=Sample.make_id(prompt.id, "teacher", "h", 0),
            prompt_id=prompt.id,
            prompt_kind=kind,
            rationale=Rationale(reasoning_steps=steps, answer=answer),
            raw_text="raw",
            output_mode="tagged",
            teacher_backend="openai",
            teacher_model="teacher",
            template_id=f"teacher/{kind}",
            template_hash="h",
            sampling=SamplingParams(),
        )
        prompts.append(prompt)
        samples.append(sample)
        verdicts.append(Verdict(sample_id=sample.id, stage="validate", outcome="accepted"))
        if i % 3 == 0:
            scores.append(JudgeScores(candidate_id=sample.id, h_rs=0.1, h_rp=0.3, h_f=0.2, judge_id="bench"))
    folder = RunFolder(run_dir).ensure()
    folder.write(RunFiles.PROMPTS, prompts)
    folder.write(RunFiles.ACCEPTED, samples)
    folder.write(RunFiles.VERDICTS, verdicts)
    folder.write(RunFiles.JUDGMENTS, scores)


def main() -> int:
    import argilla as rg

    from cotforge.review.connection import find_workspace
    from cotforge.review.push import ReviewPushConfig, read_push_inputs, to_argilla_record
    from cotforge.review.records import build_review_records
    from cotforge.review.server import ReviewServer
    from cotforge.review.settings import build_settings
    from cotforge.review.stage import push_to_argilla
    from cotforge.runfolder import RunFolder

    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    run_dir = tmp / "run"
    write_run(run_dir, N_SAMPLES)
    key = secrets.token_urlsafe(18)
    with ReviewServer(
        home=tmp / "argilla-home", api_key=key, log=lambda m: print(m, file=sys.stderr)
    ) as server:
        os.environ["ARGILLA_API_KEY"] = key
        os.environ["ARGILLA_API_URL"] = server.url
        client = rg.Argilla(api_url=server.url, api_key=key)
        find_workspace(client, "bench", create=True)
        review_records, _ = build_review_records(*read_push_inputs(RunFolder(run_dir)))

        def cotforge_push(r: int) -> float:
            config = ReviewPushConfig(workspace="bench", dataset=f"cf-{r}", batch_size=BATCH, progress=False)
            t0 = time.perf_counter()
            result = push_to_argilla(run_dir, config)
            elapsed = time.perf_counter() - t0
            assert result.pushed == N_SAMPLES, result
            return elapsed

        def sdk_log(r: int) -> float:
            records = [to_argilla_record(rec, None) for rec in review_records]
            t0 = time.perf_counter()
            dataset = rg.Dataset(
                name=f"sdk-{r}", workspace="bench", settings=build_settings(client, 1), client=client
            ).create()
            dataset.records.log(records, batch_size=BATCH)
            return time.perf_counter() - t0

        ours: list[float] = []
        theirs: list[float] = []
        sdk_log(-1)  # warm-up: first dataset creation and first bulk insert pay one-off costs
        for r in range(ROUNDS):
            order = [(ours, cotforge_push), (theirs, sdk_log)]
            for times, run in order if r % 2 == 0 else reversed(order):
                times.append(run(r))
            print(f"round {r}: cotforge {ours[-1]:.2f}s  sdk {theirs[-1]:.2f}s", flush=True)
        ours_med, theirs_med = statistics.median(ours), statistics.median(theirs)
        print(
            f"push of {N_SAMPLES} samples, median of {ROUNDS}: cotforge {ours_med:.2f}s, SDK records.log {theirs_med:.2f}s"
        )
        print(f"ratio: {ours_med / theirs_med:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
