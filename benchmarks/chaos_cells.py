"""The cells of `make chaos` (see chaos.py): the campaign's shared setup and the kill-and-resume cells.

The campaign starts one real vLLM server (SmolLM2, as the quickstart) behind the tests' fault proxy, writes a
pipeline whose model steps point at the proxy, and runs it once step by step as the reference, snapshotting the
run folder before each step. A cell copies the snapshot before its step, breaks the step, recovers, and counts
records against the reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cotforge.models.embedded import resolve_model
from cotforge.models.tiny import build_tiny_model
from cotforge.serving.vllm_server import VLLMServer
from tests.llm.fault_proxy import FaultProxy

REPO = Path(__file__).resolve().parents[1]
# What a step's outputs are compared by; manifests, caches, logs and the spend log (one line per request sent,
# so a resumed run rightly has more: those are counted as "resent") are bookkeeping, not records.
IGNORED = (
    "manifests/",
    "cache.sqlite",
    "logs/",
    "eval/results.png",
    "checkpoints/",
    "report/",
    "usage.jsonl",
)
KEEP_PORT = 18731  # the proxy's port when the work folder is kept (see Campaign.start)
STEPS = ("ingest", "generate", "validate", "review", "augment", "sample", "judge", "pairs", "train-sft",
         "train-awdpo", "eval", "release")  # fmt: skip


def pipeline(base_url: str) -> dict[str, Any]:
    """The quickstart's shape, small, every model step on ``base_url`` (the proxy in front of SmolLM2).

    Training starts from the tiny random model: what the kill cells check (resume from the last checkpoint,
    the same outputs) does not depend on the model's size, and SmolLM2 would take most of the hour."""
    # The timeout sits well above a normal request (320 tokens from a loaded CPU server) and below the proxy's
    # "delay" fault, so that fault is a real client-side timeout.
    llm = {"model": "smollm2", "base_urls": [base_url], "concurrency": 8, "timeout_s": 90}
    train = {"lora": {"r": 8, "alpha": 16}, "merge_adapter": True, "max_length": 384, "save_steps": 2,
             "resume": True, "progress": False}  # fmt: skip
    return {
        "name": "chaos",
        "run": "runs/chaos",
        "steps": [
            {"ingest": {"bundled": True, "limit_per_source": 5}},
            {"generate": {"output_mode": "structured", "samples_per_prompt": 2,
                          "bounds": {"min_steps": 2, "max_steps": 4, "max_step_chars": 160, "max_answer_chars": 300},
                          "teacher": {**llm, "sampling": {"temperature": 0.7, "max_tokens": 320}}}},
            {"validate": {"min_steps": 2}},
            {"review": {"mode": "auto"}},
            {"augment": {"per_prompt": 2, "rewriter": {**llm, "sampling": {"temperature": 0.7, "max_tokens": 120}}}},
            {"sample": {"k": 2, "limit": 16, "think_format": "constrained",
                        "policy": {**llm, "sampling": {"temperature": 1.0, "max_tokens": 192}}}},
            {"judge": {"judge": llm}},
            {"pairs": {"gamma": 0.5, "alpha": 0.2}},
            {"train-sft": {"model": str(build_tiny_model()), "learning_rate": 2e-4, "max_steps": 8, "batch_size": 2, **train}},
            {"train-awdpo": {"model": "{run}/models/sft", "learning_rate": 5e-5, "max_steps": 8, "batch_size": 2,
                             **train}},
            {"eval": {"limit": 3, "tactics": ["roleplay"],
                      "models": {"base": {**llm, "sampling": {"temperature": 0.0, "max_tokens": 96}}},
                      "judge": llm}},
            {"release": {}},
        ],
    }  # fmt: skip


def cotforge(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (own session, so a kill takes the whole process tree)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cotforge", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, start_new_session=True)  # fmt: skip


def first_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if "rror" in line or "failed" in line.lower()]
    return (errors or lines or [""])[-1]


# --- record accounting ----------------------------------------------------------------------------------------


def _record_key(record: Any, line: str) -> str:
    if isinstance(record, dict):
        for name in ("id", "candidate_id", "sample_id", "record_id", "key", "pair_id"):
            if record.get(name):
                extra = [
                    str(record.get(k))
                    for k in ("stage", "judge_id", "segment", "step", "label")
                    if k in record
                ]
                return "/".join([str(record[name]), *extra])
        if "step" in record:
            return f"step/{record['step']}/{sorted(record)}"
    return hashlib.sha256(line.encode()).hexdigest()[:16]


def record_keys(root: Path, names: list[str]) -> Counter[str]:
    """Every record key in the named outputs (JSONL lines, Parquet rows, other files by content)."""
    keys: Counter[str] = Counter()
    for name in names:
        path = root / name
        if not path.is_file():
            continue
        if path.suffix == ".jsonl":
            for line in path.read_text(encoding="utf-8").split("\n"):
                if line.strip():
                    try:
                        keys[f"{name}:{_record_key(json.loads(line), line)}"] += 1
                    except json.JSONDecodeError:
                        keys[f"{name}:torn-line"] += 1
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            for row in pq.read_table(path).to_pylist():
                keys[f"{name}:{_record_key(row, json.dumps(row, sort_keys=True, default=str))}"] += 1
        else:
            keys[f"{name}:{hashlib.sha256(_comparable_bytes(path, root)).hexdigest()[:16]}"] += 1
    return keys


# Provenance that differs between any two runs by design: the run folder's name, the build time and the hash of
# the pipeline config (which holds the run path). The release card and release.json are compared without them.
_PROVENANCE_KEYS = {"created_at", "run_name", "pipeline_config_hash", "README.md"}
_TIME = re.compile(r"\d{4}-\d\d-\d\dT[\d:.+Z-]+")
_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def _without_provenance(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_provenance(v) for k, v in value.items() if k not in _PROVENANCE_KEYS}
    if isinstance(value, list):
        return [_without_provenance(v) for v in value]
    return value


def _comparable_bytes(path: Path, root: Path) -> bytes:
    if path.name == "release.json":
        return json.dumps(_without_provenance(json.loads(path.read_text())), sort_keys=True).encode()
    if path.name == "README.md" and path.parent.name == "release":
        run = root.name
        text = path.read_text().replace(f"cotforge {run}", "cotforge <run>").replace(f"`{run}`", "`<run>`")
        return _HASH.sub("<hash>", _TIME.sub("<time>", text)).encode()
    return path.read_bytes()


def files_of(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        if not any(rel.startswith(i) or f"/{i}" in rel for i in IGNORED):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class CellResult:
    stage: str
    fault: str
    expected: int = 0
    out: int = 0
    lost: int = 0
    duplicated: int = 0
    resent: int = 0
    recovered: bool = False
    message: str = ""


# --- the campaign ---------------------------------------------------------------------------------------------


@dataclass
class Campaign:
    """One SmolLM2 server behind a fault proxy, the pipeline file, and the reference run's snapshots."""

    workdir: Path
    proxy: FaultProxy
    pipeline_file: Path
    snapshots: dict[str, Path] = field(default_factory=dict)  # step → run folder before it ran
    outputs: dict[str, list[str]] = field(default_factory=dict)  # step → files it wrote (reference)
    durations: dict[str, float] = field(default_factory=dict)
    reference: Path = Path()

    @classmethod
    @contextmanager
    def start(
        cls, keep: Path | None = None, serve: bool = True, until: str | None = None
    ) -> Iterator[Campaign]:
        """Start the server and proxy and build the reference run; with ``keep``, the work folder is kept there
        and a reference already in it is reused (the proxy then listens on a fixed port, so the pipeline file's
        URLs stay valid between invocations); ``until`` builds the reference only up to that step (for cells of
        the early steps)."""
        workdir = keep or Path(tempfile.mkdtemp(prefix="cotforge-chaos-"))
        workdir.mkdir(parents=True, exist_ok=True)
        if not serve:
            # Cells that call no model (Argilla, release, Hub, corruption) on a kept reference: no vLLM server.
            if keep is None or not (workdir / "reference.json").is_file():
                raise SystemExit("--no-server needs --keep DIR holding a finished reference run")
            campaign = cls(
                workdir=workdir, proxy=FaultProxy(upstream=""), pipeline_file=workdir / "chaos.yaml"
            )
            campaign.load_reference()
            yield campaign
            return
        with VLLMServer(str(resolve_model("smollm2")), served_model_name="smollm2", max_model_len=2048,
                        max_num_seqs=16) as server, \
                FaultProxy(upstream=server.base_url, port=KEEP_PORT if keep else 0) as proxy:  # fmt: skip
            pipeline_file = workdir / "chaos.yaml"
            pipeline_file.write_text(yaml.safe_dump(pipeline(proxy.base_url), sort_keys=False))
            campaign = cls(workdir=workdir, proxy=proxy, pipeline_file=pipeline_file)
            steps = STEPS[: STEPS.index(until) + 1] if until else STEPS
            if keep and (workdir / "reference.json").is_file():
                campaign.load_reference()
            else:
                campaign.build_reference(steps)
            try:
                yield campaign
            finally:
                if keep is None:
                    shutil.rmtree(workdir, ignore_errors=True)

    def load_reference(self) -> None:
        """Reuse the kept reference run; steps it lacks (an interrupted build) are built from their snapshot."""
        saved = json.loads((self.workdir / "reference.json").read_text())
        self.reference = self.workdir / "reference"
        self.outputs, self.durations = saved["outputs"], saved["durations"]
        missing = [step for step in STEPS if step not in self.durations]
        self.snapshots = {step: self.workdir / f"before-{step}" for step in STEPS if step not in missing[1:]}
        print(f"[reference] reused from {self.workdir}: {len(STEPS) - len(missing)} steps", flush=True)
        if missing:
            shutil.rmtree(self.reference)
            shutil.copytree(self.snapshots[missing[0]], self.reference)
            self.build_reference(missing)

    def build_reference(self, steps: Iterable[str] = STEPS) -> None:
        self.reference = self.workdir / "reference"
        self.reference.mkdir(exist_ok=True)
        for step in steps:
            self.snapshots[step] = self.workdir / f"before-{step}"
            shutil.rmtree(self.snapshots[step], ignore_errors=True)
            shutil.copytree(self.reference, self.snapshots[step])
            before = files_of(self.reference)
            t0 = time.perf_counter()
            result = self.run_step(self.reference, step)
            self.durations[step] = time.perf_counter() - t0
            if result.returncode != 0:
                raise SystemExit(
                    f"reference step {step} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                )
            after = files_of(self.reference)
            self.outputs[step] = sorted(k for k, v in after.items() if before.get(k) != v)
            print(
                f"[reference] {step}: {self.durations[step]:.0f} s, {len(self.outputs[step])} files",
                flush=True,
            )
            saved = {"outputs": self.outputs, "durations": self.durations}
            (self.workdir / "reference.json").write_text(json.dumps(saved, indent=1))

    def run_step(
        self, run: Path, first: str, last: str | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return cotforge("run", str(self.pipeline_file), "--run", str(run), "--from", first, "--until", last or first,
                        **kw)  # fmt: skip

    def fresh(self, step: str, name: str) -> Path:
        run = self.workdir / name
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(self.snapshots[step], run)
        return run

    def compare(self, result: CellResult, run: Path, steps: list[str]) -> CellResult:
        names = sorted({n for s in steps for n in self.outputs[s]})
        want, got = record_keys(self.reference, names), record_keys(run, names)
        result.expected, result.out = sum(want.values()), sum(got.values())
        result.lost = sum((want - got).values())
        result.duplicated = sum(n - 1 for k, n in got.items() if n > 1 and want.get(k, 0) < n)
        return result

    def resent_since(self, mark: int) -> int:
        seen: Counter[str] = Counter()
        for body in self.proxy.bodies[mark:]:
            seen[json.dumps([body.get("messages"), body.get("seed")], sort_keys=True)] += 1
        return sum(n - 1 for n in seen.values())


def kill_then_resume(campaign: Campaign, first: str, last: str, seed: int, kills: int = 1) -> CellResult:
    """SIGKILL the step (or steps) at random points, then re-run to completion and compare."""
    rng = random.Random(f"{first}-{last}-{seed}")
    run = campaign.fresh(first, f"kill-{first}-{last}-{seed}")
    mark = len(campaign.proxy.bodies)
    span = sum(campaign.durations[s] for s in STEPS[STEPS.index(first) : STEPS.index(last) + 1])
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    command = [sys.executable, "-m", "cotforge", "run", str(campaign.pipeline_file), "--run", str(run),
               "--from", first, "--until", last]  # fmt: skip
    for _ in range(kills):
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
        try:
            # Several kills share the span, so together they land between and inside the steps.
            proc.wait(timeout=rng.uniform(0.2, 0.8) * span / kills)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    final = campaign.run_step(run, first, last)
    steps = list(STEPS[STEPS.index(first) : STEPS.index(last) + 1])
    result = CellResult(
        stage=first if first == last else f"run {first}..{last}", fault=f"SIGKILL x{kills} (seed {seed})"
    )
    campaign.compare(result, run, steps)
    result.resent = campaign.resent_since(mark)
    result.recovered = final.returncode == 0 and result.lost == 0 and result.duplicated == 0
    result.message = "" if final.returncode == 0 else first_error_line(final)
    shutil.rmtree(run, ignore_errors=True)
    return result


@dataclass(frozen=True)
class Cell:
    stage: str
    run: Callable[[Campaign, int], CellResult]
    seeded: bool = True
    name: str = ""  # unique, for `chaos.py --only` (default: the stage)
    # Needs no campaign (no server, no reference run): selected alone, it runs without starting one.
    standalone: bool = False

    @property
    def key(self) -> str:
        return self.name or self.stage


def _kill(step: str) -> Cell:
    return Cell(step, lambda c, seed: kill_then_resume(c, step, step, seed), name=f"kill-{step}")


KILL_CELLS: list[Cell] = [
    *(
        _kill(s)
        for s in ("generate", "augment", "sample", "judge", "train-sft", "train-awdpo", "eval", "release")
    ),
    Cell("run", lambda c, seed: kill_then_resume(c, "generate", "judge", seed, kills=3), name="kill-run"),
]
