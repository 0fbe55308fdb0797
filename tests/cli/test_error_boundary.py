"""The CLI's one error boundary: every exception becomes one line naming the command and what to do; a bug
says it is one (exit 70) and shows its traceback only under --debug; user text in a message or a summary is
printed as it is, never read as markup and never as terminal control."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cotforge.cli import app
from cotforge.cli.common import PlainConsole, counts_table
from cotforge.errors import EXIT_BUG, EXIT_FAILED_RECORDS, CotforgeError, FailedRecordsError
from cotforge.llm.progress import EngineProgress
from cotforge.safe_text import visible

pytestmark = pytest.mark.unit

# Text a user can type that a renderer could read as something else: rich markup and emoji codes, terminal
# escapes, a carriage return that overwrites the line, a bidi override, a forged second line.
HOSTILE = [
    "[/]",
    "[bold red]x[/]",
    ":smile:",
    "\x1b[2J\x1b[31mred",
    "a\rb",
    "\u202eevil",
    "ok\nerror: forged",
]
RAW_CONTROLS = ("\x1b", "\r", "\u202e")
QUICKSTART = str(Path(__file__).resolve().parents[2] / "pipelines" / "quickstart.yaml")


def _lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


def _one_clean_line(result: Result) -> str:
    lines = _lines(result)
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output and not any(c in result.output for c in RAW_CONTROLS)
    return lines[0]


@pytest.fixture
def ingest_raising(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Invoke `cotforge ingest` whose edge raises ``exc``."""

    def invoke(exc: BaseException, *root_options: str, env: dict[str, str] | None = None) -> Result:
        def boom(*args: object, **kwargs: object) -> None:
            raise exc

        monkeypatch.setattr("cotforge.ingest.run.ingest_into_run", boom)
        args = [*root_options, "ingest", "--bundled", "--run", str(tmp_path / "run")]
        return CliRunner().invoke(app, args, env=env)

    return invoke


@pytest.mark.parametrize(
    ("exc", "code", "needles"),
    [
        (
            CotforgeError("duplicate id", stage="pairs", file="prompts.jsonl", line=7, record_id="p-1"),
            1,
            ["pairs: prompts.jsonl:7: duplicate id (record p-1)"],
        ),
        (FailedRecordsError("judge", 2, "judge.rejects.jsonl"), EXIT_FAILED_RECORDS, ["2 failures"]),
        (
            PermissionError(13, "Permission denied", "/r/pairs.jsonl"),
            1,
            ["/r/pairs.jsonl: Permission denied; no permission there"],
        ),
        (
            OSError(28, "No space left on device"),
            1,
            ["No space left on device", "the disk is full: free space"],
        ),
        (
            FileExistsError(17, "File exists", "/r/report"),
            1,
            ["/r/report: File exists; a file is in the way"],
        ),
        (MemoryError(), 1, ["ran out of memory"]),
        (KeyError("prompt_id"), EXIT_BUG, ["unexpected KeyError", "bug", "cotforge --debug ingest …"]),
        (ValueError("x\x1b[2J[/]"), EXIT_BUG, ["unexpected ValueError (x\\x1b[2J[/])"]),
    ],
    ids=[
        "located",
        "failed-records",
        "os-file",
        "os-bare",
        "os-in-the-way",
        "memory",
        "key-error",
        "value-error-controls",
    ],
)
def test_every_exception_is_one_line_naming_the_command(
    ingest_raising, exc: BaseException, code: int, needles: list[str]
) -> None:  # type: ignore[no-untyped-def]
    result = ingest_raising(exc)
    assert result.exit_code == code, result.output
    line = _one_clean_line(result)
    assert line.startswith("cotforge ingest: error: ") and all(n in line for n in needles), line


def test_debug_shows_the_traceback(ingest_raising) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(ingest_raising(KeyError("k"), "--debug").exception, KeyError)
    assert isinstance(ingest_raising(KeyError("k"), env={"COTFORGE_DEBUG": "1"}).exception, KeyError)


def test_a_command_without_its_own_boundary_meets_the_root_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise RuntimeError("schema models changed")

    monkeypatch.setattr("cotforge.schema_export.schema_files", boom)
    result = CliRunner().invoke(app, ["schemas", "check"])
    assert result.exit_code == EXIT_BUG
    assert _one_clean_line(result).startswith("cotforge schemas check: error: unexpected RuntimeError")


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_user_values_in_errors_are_printed_as_they_are(value: str, tmp_path: Path) -> None:
    run = ["--run", str(tmp_path / "run")]
    for args in (
        ["ingest", str(tmp_path / f"{value}.jsonl"), *run],  # a path
        ["ingest", "--bundled", "--kind", value, *run],  # a flag's value
        ["ingest", "--bundled", "--set", f"kind_x={value}", *run],  # an unknown --set key
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        assert visible(value) in _one_clean_line(result)


def test_a_very_long_value_keeps_the_error_on_one_readable_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / ("p" * 6_500)), "--run", str(tmp_path / "r")])
    line = _one_clean_line(result)
    assert result.exit_code == 1 and "characters left out" in line and len(line) < 2_200


def test_prompt_fields_print_as_plain_text_in_the_summary(tmp_path: Path) -> None:
    source = tmp_path / "prompts.jsonl"
    rows = [{"text": f"How do I boil an egg? {v}", "kind": v, "category": v} for v in HOSTILE]
    rows.append({"text": "How do I pick a lock? [/]", "kind": "safety"})
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    run = tmp_path / "[bold]run[/]"
    result = CliRunner().invoke(app, ["ingest", str(source), "--run", str(run), "--source", "[/]:smile:"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and not any(c in result.output for c in RAW_CONTROLS)
    assert f"ingest → {run}" in result.output  # the run folder's name, brackets and all
    for value in HOSTILE[:3]:  # each rejected row's kind, as given: markup and emoji codes stay text
        assert f"kind '{value}'" in result.output
    (prompt,) = [json.loads(line) for line in (run / "prompts.jsonl").read_text().splitlines()]
    assert prompt["source"] == "[/]:smile:" and prompt["text"].endswith("[/]")


@pytest.mark.parametrize(
    "args",
    [
        [
            "generate",
            "--model",
            "m",
            "--set",
            "teacher.sampling.tempo.x=1",
        ],  # below a key that is not a section
        ["generate", "--model", "m", "--set", "max_chars.x=1"],  # a key the stage does not have
        ["run", QUICKSTART, "--check", "--set", "judge.nosuch=1"],  # a step's key
        ["run", QUICKSTART, "--check", "--set", "nosuchstep.x=1"],  # no such step
    ],
    ids=lambda a: a[-1],
)
def test_an_unknown_set_key_names_its_item(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*args, "--run", str(tmp_path / "run")])
    assert result.exit_code == 1 and f"--set {args[-1]}: " in _one_clean_line(result)


def test_the_consoles_print_every_value_as_one_plain_line() -> None:
    out = io.StringIO()
    console = PlainConsole(file=out, width=400, soft_wrap=True)
    for value in HOSTILE:
        console.print(f"release folder: {value}", markup=True)  # markup asked for: still plain
    console.print(counts_table(HOSTILE[1], {value: value for value in HOSTILE}))
    printed = out.getvalue()
    assert not any(c in printed for c in RAW_CONTROLS) and printed.count("release folder: ") == len(HOSTILE)
    assert all(line.startswith("release folder: ") for line in printed.splitlines()[: len(HOSTILE)])
    assert all(visible(value) in printed for value in HOSTILE)


def test_a_progress_bar_label_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    with EngineProgress(f"eval {HOSTILE[1]}{HOSTILE[3]}", 2) as bar:  # an eval label is a user's model label
        bar.advance(cached=False, failed=False)
    shown = capsys.readouterr().err
    assert "[bold red]x[/]" in shown and "\\x1b[2J" in shown and "\x1b[2J" not in shown
