"""The shipped pipelines: both validate, and the quickstart runs end to end (shrunk) on real servers.

The end-to-end test runs `cotforge run pipelines/quickstart.yaml` as a user would (a subprocess: real vLLM
servers started and stopped by the pipeline, real TRL training), then checks what the README promises: the
release loads with `datasets`, the report exists, and a second run skips every step without starting a server.
A two-α `experiment sweep` then starts from that finished run, as a user's ablation would.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIPELINES = REPO / "pipelines"

# A smaller quickstart: same steps, fewer prompts and steps (CI has 2 cores).
SHRINK = [
    # SmolLM2 rarely refuses and often repeats itself: about a quarter of its samples pass validate, so 12
    # samples left accepted.jsonl empty now and then (and review then rightly fails); 36 never have.
    "ingest.limit_per_source=6",
    "generate.samples_per_prompt=2",
    "augment.per_prompt=1",
    "sample.limit=10",
    "train-sft.max_steps=2",
    "train-awdpo.max_steps=2",
    "eval.limit=2",
    "eval.tactics=[roleplay]",
]
SHRINK_ARGS = [a for s in SHRINK for a in ("--set", s)]

pytestmark = pytest.mark.integration

# Keys in the environment, as a user has them: none may reach any file the run writes, nor its output.
SECRETS = {
    "OPENAI_API_KEY": "sk-cotforge-sentinel-0a1b2c3d4e5f6a7b8c9d",
    "HF_TOKEN": "hf_cotforgeSentinelToken0123456789abcd",
    "ARGILLA_API_KEY": "argilla.sentinel-key-9f8e7d6c5b4a",
}


def _cotforge(*args: str, timeout: float, watch: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **SECRETS}
    if watch is not None:
        # tests/pipeline/watch_site/sitecustomize.py records every run file each step touches.
        site = [str(Path(__file__).parent / "watch_site"), str(REPO)]
        env["PYTHONPATH"] = os.pathsep.join([*site, env.get("PYTHONPATH", "")])
        env.update(COTFORGE_FILE_WATCH=str(watch), COTFORGE_FILE_WATCH_RUN=args[args.index("--run") + 1])
    return subprocess.run(
        [sys.executable, "-m", "cotforge", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("name", ["quickstart.yaml", "paper.yaml"])
def test_shipped_pipelines_validate(name: str) -> None:
    result = _cotforge("run", str(PIPELINES / name), "--check", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_pipeline_typo_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (PIPELINES / "quickstart.yaml").read_text().replace("samples_per_prompt", "samples_per_promt")
    bad.write_text(text)
    result = _cotforge("run", str(bad), "--check", timeout=120)
    assert result.returncode != 0
    assert "samples_per_promt" in result.stderr and "generate" in result.stderr


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A finished shrunk quickstart run (the module's tests read it, never change it), its file accesses
    watched (``<run>.files.tsv``)."""
    run = tmp_path_factory.mktemp("quickstart") / "run"
    first = _cotforge(
        "run", str(PIPELINES / "quickstart.yaml"), "--run", str(run), *SHRINK_ARGS, timeout=2400,
        watch=run.with_suffix(".files.tsv"),
    )  # fmt: skip
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    return run, first


def test_every_stage_touches_only_the_run_files_it_declares(
    quickstart: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    from cotforge.pipeline.runner import PipelineRunner
    from cotforge.pipeline.spec import load_pipeline
    from cotforge.pipeline.stages import registry
    from cotforge.templates import templates_root
    from tests.pipeline.file_watch import allowed_names, undeclared

    run, _ = quickstart
    touched: dict[str, set[str]] = {}
    for line in run.with_suffix(".files.tsv").read_text().splitlines():
        stage, path = line.split("\t", 1)
        touched.setdefault(stage, set()).add(path)
    spec = load_pipeline(PIPELINES / "quickstart.yaml", [*SHRINK, f"run={run}"])
    runner = PipelineRunner(spec, registry(), None, templates_root())
    assert set(touched) == {s.stage for s in spec.steps}, sorted(touched)  # every step was watched
    found = {
        step.stage: undeclared(
            touched[step.stage], allowed_names(runner.registry[step.stage], runner.config(step))
        )
        for step in spec.steps
    }
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_quickstart_end_to_end_then_everything_skips(
    quickstart: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    run, first = quickstart
    state = json.loads((run / "manifests" / "pipeline.json").read_text())
    steps = [s for s in state["steps"]]
    assert all(state["steps"][s]["status"] == "completed" for s in steps), state
    assert len(steps) == 13

    from datasets import load_dataset

    sft = load_dataset(str(run / "release"), "sft", split="train")
    assert len(sft) > 0 and "prompt_id" in sft.column_names
    prefs = load_dataset(str(run / "release"), "preference", split="train")
    assert len(prefs) == (run / "pairs.jsonl").read_text().count("\n")
    assert (run / "report" / "index.html").stat().st_size > 10_000
    assert (run / "models" / "awdpo" / "config.json").exists()
    results = json.loads((run / "eval" / "results.json").read_text())
    assert set(results) == {"base", "awdpo"}
    for label in ("dataset (release)", "AW-DPO model", "report"):
        assert label in first.stdout

    leaks = [
        (str(path.relative_to(run)), name)
        for path in run.rglob("*")
        if path.is_file()
        for name, value in SECRETS.items()
        if value.encode() in path.read_bytes()
    ]
    assert not leaks, f"keys written to the run folder (run, release, report, logs): {leaks}"
    assert not any(v in first.stdout + first.stderr for v in SECRETS.values())

    second = _cotforge(
        "run", str(PIPELINES / "quickstart.yaml"), "--run", str(run), *SHRINK_ARGS, timeout=600
    )
    assert second.returncode == 0, second.stderr[-4000:]
    assert second.stdout.count("skipped") == len(steps), second.stdout
    assert "starting vLLM server" not in second.stdout


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_alpha_sweep_end_to_end_on_the_embedded_model(
    quickstart: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    run, _ = quickstart
    sweep = tmp_path / "sweep"
    run_awdpo = _sha(run / "models" / "awdpo" / "model.safetensors")
    # The finished run seeds the shared upstream: its unchanged steps are skipped, not redone.
    sweep_args = ["--out", str(sweep), "--from-run", str(run), *SHRINK_ARGS, "--set", "pairs.alpha=0.0,5.0"]
    result = _cotforge("experiment", "sweep", str(PIPELINES / "quickstart.yaml"), *sweep_args, timeout=2400)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "starting vLLM server" not in result.stdout.split("[sweep] arm 0")[0]  # upstream: nothing re-sent

    rows = json.loads((sweep / "sweep.json").read_text())
    assert [r["arm"] for r in rows] == ["pairs.alpha=0.0", "pairs.alpha=5.0"]
    for index, row in enumerate(rows):
        arm = sweep / f"arm-{index}"
        state = json.loads((arm / "manifests" / "pipeline.json").read_text())
        assert len(state["steps"]) == 13
        assert all(step["status"] == "completed" for step in state["steps"].values()), state
        assert row["pairs"] == (arm / "pairs.jsonl").read_text().count("\n") > 0
        assert {"asr/base", "asr/awdpo", "over_refusal/awdpo"} <= set(row), row
        # SFT does not read the pairs: the arm reuses the shared model (a hard link), it does not retrain it.
        sft = "models/sft/model.safetensors"
        assert (arm / sft).stat().st_ino == (sweep / "shared" / sft).stat().st_ino
    low, high = rows
    # α → ∞ pulls the weights to 0.5; α = 0 keeps the judge's gaps.
    assert abs(high["w_rs_mean"] - 0.5) < abs(low["w_rs_mean"] - 0.5) or low["w_rs_sd"] > high["w_rs_sd"]
    # Each arm trained its own AW-DPO model on its own weights, without writing through the shared one.
    awdpo = [_sha(sweep / f"arm-{i}" / "models" / "awdpo" / "model.safetensors") for i in range(2)]
    assert awdpo[0] != awdpo[1] and run_awdpo not in awdpo
    for folder in (run, sweep / "shared"):
        assert _sha(folder / "models" / "awdpo" / "model.safetensors") == run_awdpo
    assert (sweep / "sweep.png").stat().st_size > 1000


def test_quickstart_judges_with_an_ensemble_and_reasks_on_validation(
    quickstart: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """The demo's three judges (SmolLM2 with two rubrics, the rule judge) each score every split candidate,
    `pairs` combines them and says what it left out, and validate re-asks its rejects once."""
    run, _ = quickstart
    judge = json.loads((run / "manifests" / "judge.json").read_text())
    ids = {"rule-v1", "llm:smollm2", "llm:smollm2:judge/checklist"}
    assert set(judge["extra"]["judges"]) == ids and set(judge["extra"]["agreement_between_judges"]) == {
        "rule-v1|llm:smollm2", "rule-v1|llm:smollm2:judge/checklist", "llm:smollm2|llm:smollm2:judge/checklist",
    }  # fmt: skip
    lines = [json.loads(line) for line in (run / "judgments.jsonl").read_text().split("\n") if line]
    by_judge = {i: {s["candidate_id"] for s in lines if s["judge_id"] == i} for i in ids}
    assert by_judge["rule-v1"] and all(scored == by_judge["rule-v1"] for scored in by_judge.values())
    ensemble = json.loads((run / "manifests" / "pairs.json").read_text())["extra"]["ensemble"]
    assert ensemble["candidates"] == len(by_judge["rule-v1"]) and ensemble["max_disagreement"] == 0.6
    assert sum(ensemble["disagreement_histogram"]) == ensemble["candidates"]
    html = (run / "report" / "index.html").read_text()
    assert "judge ensemble (mean of" in html and "candidates left out of the pairs" in html

    validate = json.loads((run / "manifests" / "validate.json").read_text())
    rounds = validate["extra"]["reask"]["attempts"]
    assert validate["counts"]["reasked"] > 0 and rounds[0]["asked"] == validate["counts"]["reasked"]
    rejects = [json.loads(line) for line in (run / "validate.rejects.jsonl").read_text().split("\n") if line]
    failed_attempts = [r for r in rejects if r.get("part") == "reask"]
    accepted = [json.loads(line) for line in (run / "accepted.jsonl").read_text().split("\n") if line]
    fixed = [s for s in accepted if "reask_of" in s["provenance"]]
    # Every re-asked sample is accounted for: accepted on its attempt, or a reject naming it and its reasons.
    assert (
        len(fixed) + len(failed_attempts)
        == validate["counts"]["reasked"]
        == len({s["provenance"]["reask_of"] for s in fixed} | {r["raw"]["reask_of"] for r in failed_attempts})
    )
    assert (
        validate["usage"]["requests"] + validate["usage"]["cached_requests"] >= validate["counts"]["reasked"]
    )
