"""Whole run folders damaged as a careless or hostile user would, and the real CLI command run on them.

A *case* is a finished run (built by the real server-free stages), one to three damages, and one command. Its
outcome must be one of:

- **correct**: exit 0, and the command's outputs equal what the same command writes on a folder holding the same
  data files with no manifests at all (a stage's output is a function of what it read);
- **refused**: exit 1 with one line on stderr and no traceback, and no data file changed.

Beyond that, a damage that changes a file a manifest vouches for, read by the command and not accepted with
``--accept-changed``, must be refused (never read silently). Used by ``test_fuzz_run_folder.py`` (bounded) and
by the ``run-folder-fuzz`` cell of ``make chaos`` (longer).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.pipeline.stages import registry
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import StageRun
from tests.factories import make_prompt
from tests.pipeline.conftest import PROMPTS, build_finished_run

# Data files of a finished run, and which of them hold records with an id.
DATA_FILES = (
    RunFiles.PROMPTS, RunFiles.SAMPLES, RunFiles.ACCEPTED, RunFiles.VERDICTS, RunFiles.REVIEWED,
    RunFiles.REVIEW_VERDICTS, RunFiles.CANDIDATES, RunFiles.JUDGMENTS, RunFiles.PAIRS, RunFiles.PAIRS_TRL,
    RunFiles.VALIDATE_REJECTS,
)  # fmt: skip
KEYED = {RunFiles.PROMPTS: "id", RunFiles.SAMPLES: "id", RunFiles.ACCEPTED: "id", RunFiles.REVIEWED: "id",
         RunFiles.VERDICTS: "sample_id", RunFiles.REVIEW_VERDICTS: "sample_id", RunFiles.CANDIDATES: "id",
         RunFiles.JUDGMENTS: "candidate_id", RunFiles.PAIRS: "id"}  # fmt: skip
MANIFESTS = ("ingest", "generate", "validate", "review", "judge", "pairs")
# Command → (argv after `cotforge`, with {run} for the run folder; the stage whose declaration it runs).
COMMANDS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "validate": (("validate", "--run", "{run}"), "validate"),
    "review": (("review", "auto", "--run", "{run}"), "review"),
    "judge": (("judge", "--run", "{run}"), "judge"),
    "pairs": (("pairs", "--run", "{run}"), "pairs"),
    "release": (("release", "build", "--run", "{run}"), "release"),
    "trace": (("trace", "{run}"), None),
    "report": (("report", "--run", "{run}"), "report"),
}
# Text that a renderer, a parser or a terminal could take for something other than text.
NASTY = st.lists(
    st.one_of(
        st.sampled_from(["[/]", "[bold red]", "<script>", "</think>", "<think>", "---\n", "license: x\n", "{{ x }}",
                         "\x00", "\x1b[31m", "\u202e", "\u2028", "\r", "\ufeff", "`", "|", "\\", '"', "\n"]),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
    ),
    max_size=6,
).map("".join)  # fmt: skip
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | NASTY, lambda inner: st.lists(inner, max_size=3), max_leaves=5
)


@dataclass(frozen=True)
class Damage:
    """One thing done to a run folder: ``kind`` on ``target`` (a run file or a stage's manifest)."""

    kind: str
    target: str
    where: float = 0.5  # a fraction: the line or byte it hits
    value: Any = None

    def describe(self) -> str:
        return f"{self.kind} {self.target}" + (f" ({self.value!r:.40})" if self.value is not None else "")


DAMAGES = st.one_of(
    st.builds(Damage, st.just("swap"), st.sampled_from(DATA_FILES), st.floats(0, 1), st.booleans()),
    st.builds(Damage, st.just("truncate"), st.sampled_from(DATA_FILES), st.floats(0.05, 0.95)),
    st.builds(
        Damage, st.just("duplicate-id"), st.sampled_from(sorted(KEYED)), st.floats(0, 1), st.booleans()
    ),
    st.builds(Damage, st.just("edit-text"), st.sampled_from(DATA_FILES), st.floats(0, 1), NASTY),
    st.builds(Damage, st.just("newer-key"), st.sampled_from(MANIFESTS), st.floats(0, 1), JSON_VALUE),
    st.builds(Damage, st.just("running"), st.sampled_from(MANIFESTS), st.floats(0, 1), st.booleans()),
    st.builds(Damage, st.just("drop-manifest"), st.sampled_from(MANIFESTS)),
    st.builds(Damage, st.just("truncate-manifest"), st.sampled_from(MANIFESTS), st.floats(0.05, 0.95)),
    st.builds(Damage, st.just("usage-line"), st.just(RunFiles.USAGE), st.floats(0, 1), JSON_VALUE),
    st.builds(Damage, st.just("drop-run-id"), st.just("manifests/run.json")),
)


@cache
def base_runs() -> tuple[Path, Path]:
    """A finished run (its hand-written prompts and samples vouched for as ingest and generate would) and
    another run over other prompts; built once per process."""
    root = Path(tempfile.mkdtemp(prefix="cotforge-fuzz-"))
    base, other = root / "base", root / "other"
    other_prompts = [make_prompt(f"{p.text} Be quick.", p.kind) for p in PROMPTS]
    for run, prompts in ((base, PROMPTS), (other, other_prompts)):
        build_finished_run(run, prompts)
        for stage, name in (("ingest", RunFiles.PROMPTS), ("generate", RunFiles.SAMPLES)):
            with StageRun(RunFolder(run), stage, {}, outputs=[name]):
                pass
    return base, other


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _edit_record(record: Any, value: str) -> Any:
    """``record`` with its first string field (outside ids) replaced by ``value``, nested ones included."""
    if isinstance(record, dict):
        for key, item in record.items():
            if isinstance(item, str) and key not in KEYED.values():
                return {**record, key: value}
        for key, item in record.items():
            if isinstance(item, dict | list):
                return {**record, key: _edit_record(item, value)}
    if isinstance(record, list) and record:
        return [_edit_record(record[0], value), *record[1:]]
    return record


def _manifest_data(path: Path) -> dict[str, Any] | None:
    """A manifest's JSON object, or ``None`` when an earlier damage left none to edit."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def apply(damage: Damage, run: Path, other: Path) -> None:
    """Do ``damage`` to the run folder ``run`` (``other`` is the run files are swapped from)."""
    manifest = run / "manifests" / f"{damage.target}.json"
    path = run / damage.target
    if damage.kind == "swap" and (other / damage.target).is_file():
        shutil.copy(other / damage.target, path)
        writer = next(
            (m for m in (other / "manifests").glob("*.json") if damage.target in m.read_text()), None
        )
        if damage.value and writer is not None:  # its manifest too
            shutil.copy(writer, run / "manifests" / writer.name)
    elif damage.kind == "truncate" and path.is_file():
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * damage.where)])
    elif damage.kind in ("duplicate-id", "edit-text") and path.is_file() and _lines(path):
        lines = _lines(path)
        i = int(damage.where * (len(lines) - 1))
        try:
            record = json.loads(lines[i])
        except ValueError:
            return  # a line an earlier damage cut: nothing to edit or repeat
        if damage.kind == "edit-text":
            lines[i] = json.dumps(_edit_record(record, damage.value), ensure_ascii=False)
        else:  # the same id again: the same record (damage.value False) or another one
            lines.append(json.dumps(_edit_record(record, "a different value") if damage.value else record))
        _write_lines(path, lines)
    elif damage.kind == "newer-key" and (data := _manifest_data(manifest)) is not None:
        data[f"added_in_v{int(damage.where * 9) + 2}"] = damage.value
        data.setdefault("usage", {})["future_tokens"] = 1
        manifest.write_text(json.dumps(data))
    elif damage.kind == "running" and (data := _manifest_data(manifest)) is not None:
        manifest.write_text(json.dumps({**data, "status": "running", "finished_at": None}))
        outputs = list(data.get("outputs") or [])
        if damage.value and outputs:  # and a temp file of a cut-off write
            name = outputs[int(damage.where * (len(outputs) - 1))]
            (run / name).parent.joinpath(f".{Path(name).name}.a1b2.tmp").write_text('{"id": "')
    elif damage.kind == "drop-manifest":
        manifest.unlink(missing_ok=True)
    elif damage.kind == "truncate-manifest" and manifest.is_file():
        data = manifest.read_bytes()
        manifest.write_bytes(data[: int(len(data) * damage.where)])
    elif damage.kind == "usage-line":
        line = json.dumps(damage.value, ensure_ascii=False)
        good = {"stage": "judge", "model": "m", "prompt_tokens": 1, "completion_tokens": 1, "cost_usd": None}
        lines = [json.dumps(good), line] if damage.where < 0.5 else [line]
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(x + "\n" for x in lines))
    elif damage.kind == "drop-run-id":
        (run / damage.target).unlink(missing_ok=True)


def data_files(run: Path) -> dict[str, str]:
    """SHA-256 of every file outside ``manifests/`` (what a refused command must leave as it was)."""
    return {
        p.relative_to(run).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.relative_to(run).parts[0] != RunFiles.MANIFESTS
    }


def vouched(run: Path) -> dict[str, str]:
    """Run file → the manifest (stage) that lists it among its outputs, in the undamaged run."""
    out = {}
    for manifest in (run / "manifests").glob("*.json"):
        data = _manifest_data(manifest) or {}
        for name in data.get("outputs") or {}:
            out[name] = manifest.stem
    return out


def checked_inputs(command: str) -> tuple[str, ...]:
    """The run files the command checks against their manifests before reading (its stage's inputs)."""
    stage = COMMANDS[command][1]
    if stage is None:
        return ()
    declaration = registry()[stage]
    config = declaration.config_model()()
    return (*declaration.all_inputs(config), *declaration.resumed_outputs(config))


def outputs_of(command: str) -> tuple[str, ...]:
    stage = COMMANDS[command][1]
    if stage is None:
        return ("ledger.parquet",)
    declaration = registry()[stage]
    extra = {"release": ("release",), "report": ("report",)}.get(command, ())
    return (*declaration.all_outputs(declaration.config_model()()), *extra)


@dataclass
class Outcome:
    """What one case did, and what it broke (``violations`` empty: a correct output or a clean refusal)."""

    exit_code: int
    message: str
    violations: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.exit_code != 0 and not self.violations


_cli = CliRunner()
# The CLI's error boundary: `cotforge <command>: error: ...` on one line.
ERROR_LINE = re.compile(r"cotforge [\w -]+: error: ")
BENIGN = ("newer-key", "drop-manifest", "drop-run-id")  # what a reader must tolerate: the command succeeds
CONTENT = ("swap", "truncate", "duplicate-id", "edit-text")


def run_command(command: str, run: Path, accept: list[str] | tuple[str, ...] = ()) -> Any:
    argv = [a.format(run=run) for a in COMMANDS[command][0]]
    for name in accept:
        argv += ["--accept-changed", name]
    return _cli.invoke(app, argv)


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if not k.endswith("_at")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _json_or_text(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line


def comparable(run: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """The records the named outputs hold (JSONL lines, Parquet rows by folder), times left out."""
    import pyarrow.parquet as pq

    out: dict[str, Any] = {}
    for name in names:
        path = run / name
        files = (
            [path]
            if path.is_file()
            else sorted(p for p in path.rglob("*") if p.is_file())
            if path.is_dir()
            else []
        )
        for file in files:
            if file.suffix == ".jsonl":
                out[file.relative_to(run).as_posix()] = [_timeless(_json_or_text(x)) for x in _lines(file)]
            elif file.suffix == ".parquet":  # named by content hash: keyed by its folder
                rows = [_timeless(r) for r in pq.read_table(file).to_pylist()]
                out[file.parent.relative_to(run).as_posix()] = sorted(
                    json.dumps(r, sort_keys=True) for r in rows
                )
    return out


def _must_refuse(damage: Damage, command: str, changed: bool, accepted: list[str], base: Path) -> str | None:
    """Why a single ``damage`` must be refused by ``command`` (``None``: it need not be)."""
    inputs = checked_inputs(command)
    writer = vouched(base)
    if damage.kind in CONTENT and changed and damage.target in inputs and damage.target in writer:
        return (
            None if damage.target in accepted else f"{damage.target} changed since `{writer[damage.target]}`"
        )
    if damage.kind == "running" and damage.target != COMMANDS[command][1]:
        listed = [f for f, stage in writer.items() if stage == damage.target and f in inputs]
        return f"{', '.join(listed)} left unfinished by `{damage.target}`" if listed else None
    return None


def run_case(damages: list[Damage], command: str, accept: bool) -> Outcome:
    """Damage a copy of the finished run, run ``command`` on it, and check the outcome (see the module doc)."""
    base, other = base_runs()
    with tempfile.TemporaryDirectory() as tmp:
        run, oracle = Path(tmp) / "a" / "run", Path(tmp) / "b" / "run"  # one name: the release shows it
        shutil.copytree(base, run)
        for damage in damages:
            apply(damage, run, other)
        target, original = run / damages[0].target, base / damages[0].target
        changed = (
            not (target.is_file() and original.is_file()) or target.read_bytes() != original.read_bytes()
        )
        inputs = checked_inputs(command)
        accepted = sorted(
            {d.target for d in damages if d.target in DATA_FILES and d.target in inputs} if accept else []
        )
        shutil.copytree(run, oracle)
        shutil.rmtree(oracle / RunFiles.MANIFESTS)
        (oracle / RunFiles.USAGE).unlink(missing_ok=True)
        before = data_files(run)
        result = run_command(command, run, accepted)
        line = result.stderr.strip()
        outcome = Outcome(result.exit_code, line.splitlines()[0] if line else "")
        bad = outcome.violations
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            bad.append(f"crashed: {type(result.exception).__name__}: {result.exception}")
            return outcome
        if result.exit_code != 0:
            if result.exit_code != 1 or "\n" in line or not ERROR_LINE.match(line):
                bad.append(f"not a one-line error (exit {result.exit_code}): {line[:300]!r}")
            if data_files(run) != before:
                bad.append("a refused command changed data files")
            if len(damages) == 1 and damages[0].kind in BENIGN:
                bad.append(f"refused what it must tolerate ({damages[0].describe()}): {line[:200]}")
            return outcome
        outputs = outputs_of(command)
        after = data_files(run)
        stray = sorted(
            k for k in before.keys() | after.keys()
            if before.get(k) != after.get(k) and not any(k == o or k.startswith(o.rstrip("/") + "/") for o in outputs)
        )  # fmt: skip
        if stray:
            bad.append(f"changed files it does not write: {stray}")
        reason = _must_refuse(damages[0], command, changed, accepted, base) if len(damages) == 1 else None
        if reason is not None:
            bad.append(f"read a file its manifest no longer vouches for: {reason}")
        reference = run_command(command, oracle)
        if reference.exit_code != 0:
            bad.append(f"exit 0, but the same data without manifests fails: {reference.stderr.strip()[:200]}")
        elif comparable(run, outputs) != comparable(oracle, outputs):
            bad.append("its output differs from the same command's on the same data without manifests")
        return outcome
