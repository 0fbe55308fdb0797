"""The Ray executor's cells of `make chaos`: the generate step with ``executor: ray`` on a local Ray cluster that
its own driver starts (2 CPUs), against the campaign's SmolLM2 server behind the fault proxy.

- ``ray-kill-driver``: SIGKILL of the driver's whole process group (the driver, its local cluster and its
  workers) once part of the answers are written, then the same command again: the answers that reached the
  driver's cache are not asked again, the rest are, and the outputs match the reference.
- ``ray-kill-worker``: SIGKILL of one Ray Data worker mid-job; Ray Data restarts the actor and re-runs its
  batch, and the same run finishes with every record once (no re-run of the command).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from chaos_cells import REPO, Campaign, Cell, CellResult, cotforge, first_error_line

ON_RAY = ["--set", "generate.teacher.executor=ray", "--set", "generate.teacher.ray.local_cpus=2",
          "--set", "generate.teacher.ray.batch_size=4"]  # fmt: skip


def _command(campaign: Campaign, run: Path) -> list[str]:
    return [sys.executable, "-m", "cotforge", "run", str(campaign.pipeline_file), "--run", str(run), "--from",
            "generate", "--until", "generate", *ON_RAY]  # fmt: skip


def _lines(path: Path) -> int:
    return path.read_text(encoding="utf-8").count("\n") if path.is_file() else 0


def _wait_for_answers(proc: subprocess.Popen[bytes], run: Path, count: int, timeout_s: float = 900) -> bool:
    """True once ``count`` samples or rejects are written (False if the run ended or timed out first)."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        if _lines(run / "samples.jsonl") + _lines(run / "generate.rejects.jsonl") >= count:
            return True
        time.sleep(0.1)
    return False


def _finish(
    campaign: Campaign, result: CellResult, run: Path, returncode: int, message: str, mark: int
) -> None:
    campaign.compare(result, run, ["generate"])
    result.resent = campaign.resent_since(mark)
    result.recovered = returncode == 0 and result.lost == 0 and result.duplicated == 0
    result.message = message


def kill_driver(campaign: Campaign, seed: int) -> CellResult:
    rng = random.Random(f"ray-driver-{seed}")
    run = campaign.fresh("generate", f"ray-kill-driver-{seed}")
    mark = len(campaign.proxy.bodies)
    expected = _lines(campaign.reference / "samples.jsonl") + _lines(
        campaign.reference / "generate.rejects.jsonl"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    proc = subprocess.Popen(_command(campaign, run), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    result = CellResult("generate (ray)", f"driver SIGKILL (seed {seed})")
    if _wait_for_answers(proc, run, max(1, int(rng.uniform(0.2, 0.6) * expected))):
        group = [p for p in psutil.process_iter() if _session(p) == proc.pid]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        result.fault += f" after {_lines(run / 'samples.jsonl')} samples ({len(group)} processes"
        time.sleep(3)
        left = [p.pid for p in group if _alive(p)]  # the local cluster must not outlive its driver
        result.fault += f", {len(left)} left behind: {left})" if left else ", none left behind)"
    else:
        result.fault += " (the run ended first)"
        proc.wait()
    final = cotforge("run", str(campaign.pipeline_file), "--run", str(run), "--from", "generate", "--until",
                     "generate", *ON_RAY)  # fmt: skip
    _finish(
        campaign,
        result,
        run,
        final.returncode,
        "" if final.returncode == 0 else first_error_line(final),
        mark,
    )
    shutil.rmtree(run, ignore_errors=True)
    return result


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False


def _session(process: psutil.Process) -> int | None:
    try:
        return os.getsid(process.pid)
    except (ProcessLookupError, PermissionError):
        return None


def kill_worker(campaign: Campaign, seed: int) -> CellResult:
    rng = random.Random(f"ray-worker-{seed}")
    run = campaign.fresh("generate", f"ray-kill-worker-{seed}")
    mark = len(campaign.proxy.bodies)
    expected = _lines(campaign.reference / "samples.jsonl") + _lines(
        campaign.reference / "generate.rejects.jsonl"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    proc = subprocess.Popen(_command(campaign, run), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    result = CellResult("generate (ray)", f"Ray worker SIGKILL (seed {seed})")
    if _wait_for_answers(proc, run, max(1, int(rng.uniform(0.1, 0.5) * expected))):
        workers = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "MapWorker" in " ".join(p.cmdline())
        ]
        if workers:
            os.kill(workers[0].pid, signal.SIGKILL)
            result.fault += f" after {_lines(run / 'samples.jsonl')} samples"
        else:
            result.fault += " (no worker found)"
    else:
        result.fault += " (the run ended first)"
    output, _ = proc.communicate()
    lines = [line for line in output.decode(errors="replace").splitlines() if "rror" in line]
    _finish(campaign, result, run, proc.returncode, "" if proc.returncode == 0 else (lines or [""])[-1], mark)
    shutil.rmtree(run, ignore_errors=True)
    return result


RAY_CELLS: list[Cell] = [
    Cell("generate", kill_driver, name="ray-kill-driver"),
    Cell("generate", kill_worker, name="ray-kill-worker"),
]
