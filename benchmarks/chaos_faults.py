"""The non-kill cells of `make chaos`: teacher faults, a replica that dies, Argilla down, a failing Hub commit,
a full disk, and hand-made corruption (a broken request cache, a torn line mid-file, a broken pipeline state)."""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from chaos_cells import REPO, Campaign, Cell, CellResult, cotforge, files_of, first_error_line

from tests.llm.fault_proxy import FaultProxy


def _finish(
    campaign: Campaign, result: CellResult, run: Path, step: str, final: Any, mark: int
) -> CellResult:
    campaign.compare(result, run, [step])
    result.resent = campaign.resent_since(mark)
    result.recovered = final.returncode == 0 and result.lost == 0 and result.duplicated == 0
    result.message = "" if final.returncode == 0 else first_error_line(final)
    return result


# --- teacher faults ------------------------------------------------------------------------------------------


def teacher_fault(fault: str) -> Cell:
    """Every 4th request to the teacher gets ``fault``; generate must still account for every sample."""

    def run(campaign: Campaign, seed: int) -> CellResult:
        run_dir = campaign.fresh("generate", f"teacher-{fault}")
        mark = len(campaign.proxy.bodies)
        campaign.proxy.schedule = lambda n, body: fault if n % 4 == 0 else None
        # The "delay" cell shortens the client's patience (no waiting on a server that looks alive but silent),
        # so each stalled request costs 40 s, not the pipeline's 90 s plus the queue wait.
        patience = ["--set", "generate.teacher.timeout_s=40", "--set", "generate.teacher.queue_wait_s=0"]
        campaign.proxy.fault_delay_s = 45.0
        try:
            final = cotforge("run", str(campaign.pipeline_file), "--run", str(run_dir), "--from", "generate",
                             "--until", "generate", *(patience if fault == "delay" else []))  # fmt: skip
        finally:
            campaign.proxy.schedule = lambda n, body: None
        result = _finish(campaign, CellResult("generate", f"teacher {fault} on every 4th request"), run_dir,
                         "generate", final, mark)  # fmt: skip
        shutil.rmtree(run_dir, ignore_errors=True)
        return result

    return Cell("teacher", run, seeded=False, name=f"teacher-{fault}")


def replica_dies(campaign: Campaign, seed: int) -> CellResult:
    """Two replicas (two proxies to one server); one stops mid-run and comes back on the same port."""
    second = FaultProxy(upstream=campaign.proxy.upstream).start()
    port = int(second.base_url.split(":")[2].split("/")[0])
    spec = yaml.safe_load(campaign.pipeline_file.read_text())
    for step in spec["steps"]:
        for config in step.values():
            teacher = config.get("teacher") if isinstance(config, dict) else None
            if teacher:
                teacher["base_urls"] = [campaign.proxy.base_url, second.base_url]
    variant = campaign.workdir / "replicas.yaml"
    variant.write_text(yaml.safe_dump(spec, sort_keys=False))
    run_dir = campaign.fresh("generate", "replica")
    mark = len(campaign.proxy.bodies)

    def flap() -> None:
        nonlocal second
        time.sleep(0.3 * campaign.durations["generate"])
        second.stop()
        time.sleep(0.3 * campaign.durations["generate"])
        second = FaultProxy(upstream=campaign.proxy.upstream, port=port).start()

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    final = cotforge("run", str(variant), "--run", str(run_dir), "--from", "generate", "--until", "generate")
    flapper.join()
    second.stop()
    result = _finish(
        campaign, CellResult("generate", "replica dies mid-run"), run_dir, "generate", final, mark
    )
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


# --- Argilla ---------------------------------------------------------------------------------------------------


def argilla_cells(campaign: Campaign, seed: int) -> CellResult:
    """Argilla killed mid-push and restarted: the re-push leaves each record once on the server."""
    from cotforge.review.server import ReviewServer

    run_dir = campaign.fresh("review", "argilla")
    home = campaign.workdir / "argilla-home"
    key = secrets.token_urlsafe(18)
    accepted = sum(1 for line in (run_dir / "accepted.jsonl").read_text().split("\n") if line.strip())
    result = CellResult("review push", "Argilla killed mid-push, restarted", expected=accepted)
    server = ReviewServer(home=home, api_key=key, log=lambda _: None).start().wait_ready()
    env = {**os.environ, "ARGILLA_API_URL": server.url, "ARGILLA_API_KEY": key, "PYTHONPATH": str(REPO)}
    push = ["review", "push", "--run", str(run_dir)]
    proc = subprocess.Popen([sys.executable, "-m", "cotforge", *push], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    import argilla as rg

    _wait_for_a_dataset(rg.Argilla(api_url=server.url, api_key=key), proc)
    result.fault += " (mid-push)" if proc.poll() is None else " (push had finished)"
    port, redis_port = server.port, server.redis_port
    server.stop()
    proc.wait(timeout=300)
    server = (
        ReviewServer(home=home, api_key=key, port=port, redis_port=redis_port, log=lambda _: None)
        .start()
        .wait_ready()
    )
    try:
        final = subprocess.run([sys.executable, "-m", "cotforge", *push], env=env, capture_output=True, text=True,
                               timeout=600)  # fmt: skip
        client = rg.Argilla(api_url=server.url, api_key=key)
        datasets = [d for d in client.datasets.list()]
        result.out = sum(len(list(d.records)) for d in datasets)
        result.lost = max(0, accepted - result.out)
        result.duplicated = max(0, result.out - accepted)
        result.recovered = final.returncode == 0 and result.lost == 0 and result.duplicated == 0
        result.message = "" if final.returncode == 0 else first_error_line(final)
    finally:
        server.stop()
    # The same user, same key and URL, with nothing listening there any more: a clear error, no partial file.
    before = files_of(run_dir)
    down = subprocess.run([sys.executable, "-m", "cotforge", "review", "pull", "--run", str(run_dir)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    torn = sorted(k for k, v in files_of(run_dir).items() if before.get(k) != v)
    if down.returncode == 0 or torn:
        result.recovered = False
    changed = f" (files changed: {torn})" if torn else ""
    # Not " | ": the message is the last cell of a Markdown table row.
    pulled = "pull with Argilla down: " + first_error_line(down) + changed
    result.message = "; ".join(m for m in (result.message, pulled) if m)[:200]
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _wait_for_a_dataset(client: Any, proc: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    """Until the push has created its dataset on the server (or ended): the fault then lands mid-push."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        if any(True for _ in client.datasets.list()):
            return
        time.sleep(0.05)


def argilla_push_killed(campaign: Campaign, seed: int) -> CellResult:
    """SIGKILL `review push` once its dataset exists on the server (mid-create or mid-log), then re-push."""
    import argilla as rg

    from cotforge.review.server import ReviewServer

    rng = random.Random(f"argilla-{seed}")
    run_dir = campaign.fresh("review", f"argilla-kill-{seed}")
    key = secrets.token_urlsafe(18)
    accepted = sum(1 for line in (run_dir / "accepted.jsonl").read_text().split("\n") if line.strip())
    result = CellResult("review push", f"SIGKILL x1 once the dataset exists (seed {seed})", expected=accepted)
    server = ReviewServer(
        home=campaign.workdir / f"argilla-kill-home-{seed}", api_key=key, log=lambda _: None
    )
    server.start().wait_ready()
    try:
        env = {**os.environ, "ARGILLA_API_URL": server.url, "ARGILLA_API_KEY": key, "PYTHONPATH": str(REPO)}
        push = [sys.executable, "-m", "cotforge", "review", "push", "--run", str(run_dir)]
        proc = subprocess.Popen(push, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
        client = rg.Argilla(api_url=server.url, api_key=key)
        _wait_for_a_dataset(client, proc)
        time.sleep(rng.uniform(0.0, 0.5))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            result.fault += " (killed)"
        else:
            result.fault += " (push had finished)"
        proc.wait()
        final = subprocess.run(push, env=env, capture_output=True, text=True, timeout=600)
        ids = Counter(str(r.id) for d in client.datasets.list() for r in d.records)
        result.out = sum(ids.values())
        result.duplicated = sum(n - 1 for n in ids.values())
        result.lost = max(0, accepted - len(ids))
        result.recovered = final.returncode == 0 and result.lost == 0 and result.duplicated == 0
        result.message = "" if final.returncode == 0 else first_error_line(final)
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


# --- Hub ---------------------------------------------------------------------------------------------------------


class FlakyHub:
    """A Hub client (the Hub cannot be reached here) whose first commit fails mid-way; records every call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.commits: list[list[str]] = []
        self.fail_next_commit = True

    def create_repo(self, repo_id: str, **kwargs: Any) -> Any:
        self.calls.append("create_repo")

    def repo_info(self, repo_id: str, **kwargs: Any) -> Any:
        return SimpleNamespace(private=False)

    def list_repo_refs(self, repo_id: str, **kwargs: Any) -> Any:
        return SimpleNamespace(branches=[SimpleNamespace(name="main")], tags=[])

    def create_branch(self, repo_id: str, **kwargs: Any) -> Any:
        self.calls.append("create_branch")

    def create_commit(self, repo_id: str, operations: Any, **kwargs: Any) -> Any:
        if self.fail_next_commit:
            self.fail_next_commit = False
            raise ConnectionError("connection reset while uploading")
        self.commits.append(sorted(op.path_in_repo for op in operations))
        return SimpleNamespace(oid="0" * 40, commit_url="https://example.invalid/commit")

    def create_tag(self, repo_id: str, **kwargs: Any) -> Any:
        self.calls.append("create_tag")


def hub_push_fails(campaign: Campaign, seed: int) -> CellResult:
    from cotforge.errors import CotforgeError
    from cotforge.release.push import PushConfig, push_release

    release = campaign.reference / "release"
    files = sorted(
        str(p.relative_to(release)) for p in release.rglob("*") if p.is_file() and "manifests" not in p.parts
    )
    result = CellResult("release push", "Hub commit fails mid-way, re-push", expected=len(files))
    hub = FlakyHub()
    os.environ.setdefault("HF_TOKEN", "hf_" + "x" * 30)
    try:
        push_release(release, PushConfig(repo_id="me/chaos", tag="v1"), client=hub)
    except CotforgeError as exc:
        result.message = str(exc).splitlines()[0]
    half_published = bool(hub.commits) or "create_tag" in hub.calls
    push_release(release, PushConfig(repo_id="me/chaos", tag="v1"), client=hub)
    pushed = hub.commits[-1] if hub.commits else []
    result.out = len([f for f in pushed if f in files])
    result.lost = len(set(files) - set(pushed))
    result.recovered = (
        bool(result.message) and not half_published and result.lost == 0 and len(hub.commits) == 1
    )
    return result


# --- full disk -------------------------------------------------------------------------------------------------


def disk_full(step: str, size_kb: int, headroom_kb: int = 24) -> Cell:
    """The run folder on a small tmpfs, filled while ``step`` runs; then space is freed and the step re-run.

    ``headroom_kb`` is left free: enough for the pipeline state and manifests, so the step itself fills it."""

    def run(campaign: Campaign, seed: int) -> CellResult:
        mount = campaign.workdir / f"tmpfs-{step}"
        mount.mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount)], check=True)
        try:
            run_dir = mount / "run"
            shutil.copytree(campaign.snapshots[step], run_dir, ignore=shutil.ignore_patterns("cache.sqlite"))
            free = shutil.disk_usage(mount).free
            (mount / "filler").write_bytes(b"\0" * max(0, free - headroom_kb * 1024))
            mark = len(campaign.proxy.bodies)
            full = campaign.run_step(run_dir, step)
            torn = _torn_lines(run_dir)
            leftovers = [p.name for p in run_dir.rglob("*.tmp*")]
            (mount / "filler").unlink()
            final = campaign.run_step(run_dir, step)
            result = _finish(
                campaign, CellResult(step, f"disk full ({size_kb} KB tmpfs)"), run_dir, step, final, mark
            )
            result.message = first_error_line(full) if full.returncode != 0 else "NO ERROR on a full disk"
            result.recovered = result.recovered and full.returncode != 0 and not torn and not leftovers
            if torn or leftovers:
                result.message += f" | torn: {torn} leftovers: {leftovers}"
            return result
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)

    return Cell(step, run, seeded=False, name=f"disk-full-{step}")


def _torn_lines(run_dir: Path) -> list[str]:
    torn = []
    for path in run_dir.rglob("*.jsonl"):
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").split("\n"), start=1
        ):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    torn.append(f"{path.name}:{number}")
    return torn


# --- hand-made corruption ---------------------------------------------------------------------------------------


def corruption(kind: str) -> Cell:
    """Break a finished run's file by hand; the next command must name the file (and not go on silently)."""

    def run(campaign: Campaign, seed: int) -> CellResult:
        run_dir = campaign.fresh("validate", f"corrupt-{kind}")
        shutil.copy2(campaign.reference / "samples.jsonl", run_dir / "samples.jsonl")
        if kind == "cache.sqlite":
            shutil.copy2(campaign.reference / "cache.sqlite", run_dir / "cache.sqlite")
            (run_dir / "cache.sqlite").write_bytes(b"this is not a database" * 100)
            command, step = ("generate", "--force"), "generate"
            named = "cache.sqlite"
        elif kind == "torn line mid-file":
            lines = (run_dir / "samples.jsonl").read_text(encoding="utf-8").split("\n")
            middle = len([x for x in lines if x]) // 2
            lines[middle] = lines[middle][: len(lines[middle]) // 2]
            (run_dir / "samples.jsonl").write_text("\n".join(lines), encoding="utf-8")
            command, step, named = ("validate",), "validate", f"samples.jsonl:{middle + 1}"
        else:  # a hand-edited pipeline state
            shutil.copytree(campaign.reference / "manifests", run_dir / "manifests", dirs_exist_ok=True)
            (run_dir / "manifests" / "pipeline.json").write_text('{"name": "chaos", "steps": {"x": 1}}')
            command, step, named = ("validate",), "validate", "pipeline.json"
        final = cotforge("run", str(campaign.pipeline_file), "--run", str(run_dir), "--from", command[0], "--until",
                         command[0], *command[1:])  # fmt: skip
        message = first_error_line(final)
        result = CellResult(step, f"corrupted {kind}", message=message)
        said = named.split(":")[0] in (final.stdout + final.stderr)
        # Detected and named, either as an error or as a message saying what cotforge did about it.
        result.recovered = said and "Traceback" not in final.stderr
        if final.returncode == 0:
            campaign.compare(result, run_dir, [step])
            result.recovered = result.recovered and result.lost == 0 and result.duplicated == 0
        shutil.rmtree(run_dir, ignore_errors=True)
        return result

    return Cell("corruption", run, seeded=False, name="corrupt-" + kind.split()[0].replace(".sqlite", ""))


FAULT_CELLS: list[Cell] = [
    *(teacher_fault(f) for f in ("429", "429-bare", "500", "delay", "truncate", "nonjson")),
    Cell("teacher", replica_dies, seeded=False, name="replica-dies"),
    Cell("review", argilla_cells, seeded=False, name="argilla"),
    Cell("review", argilla_push_killed, name="kill-review-push"),
    Cell("release", hub_push_fails, seeded=False, name="hub-push"),
    disk_full("generate", 512, headroom_kb=40),
    disk_full("validate", 512),
    *(corruption(k) for k in ("cache.sqlite", "torn line mid-file", "pipeline state")),
]
