"""CLI: `ingest` — prompt files into the run folder's prompts.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cotforge.cli.common import RunOption, console, counts_table, err_console, fail
from cotforge.cli.config_options import StageConfig
from cotforge.cli.stage_command import stage_command

if TYPE_CHECKING:
    from cotforge.ingest.rows import IngestConfig

INGEST = StageConfig(
    "cotforge.ingest.rows:IngestConfig",
    {
        "bundled": "bundled",
        "limit": "limit_per_source",
        "split": "split",
        "kind": "kind",
        "text_column": "text_column",
        "category_column": "category_column",
        "kind_column": "kind_column",
        "source": "source",
        "licence": "licence",
        "max_chars": "max_chars",
    },
    "ingest",
    spellings={"bundled": ("--bundled",)},
)


# What each overruled label means, for the note the command prints.
OVERRULED = {
    "source": "--source {config.source!r} replaced the row's own source on {n} row(s)",
    "licence": "{n} row(s) name their own licence, kept over --licence {config.licence!r}",
}


def _load_mapping(path: Path, what: str) -> dict[str, str]:
    from cotforge.bounded_yaml import read_yaml_file
    from cotforge.input_paths import check_input_path

    check_input_path(path, what, folder=False)
    data = read_yaml_file(path, what)
    if not isinstance(data, dict):
        fail(f"{path}: expected a YAML mapping of source label → value")
    return {str(k): str(v) for k, v in data.items()}


def _sources_and_maps(raw: dict[str, Any], params: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """The command's files and mapping files into the config (files after the config file's sources)."""
    raw = dict(raw)
    if params["sources"]:
        raw["sources"] = [*(raw.get("sources") or []), *params["sources"]]
    for name, what in (("category_map", "category map"), ("kind_map", "kind map")):
        if params[name] is not None:
            raw[name] = _load_mapping(params[name], what)
    return raw


def register(app: typer.Typer) -> None:
    @stage_command(app, INGEST, prepare=_sources_and_maps)
    def ingest(
        config: IngestConfig,
        sources: Annotated[
            list[str] | None,
            typer.Argument(
                help="JSONL, JSON, CSV, TSV or Parquet files, `datasets` folders, Hub ids (when online), or `-` (JSONL on stdin)."
            ),
        ] = None,
        run: RunOption = Path("runs/default"),
        category_map: Path | None = typer.Option(
            None, "--category-map", help="YAML: source label → category."
        ),
        kind_map: Path | None = typer.Option(
            None, "--kind-map", help="YAML: kind label (e.g. jailbreak) → utility or safety."
        ),
        strict: bool = typer.Option(False, "--strict", help="Exit 1 when any row is rejected."),
    ) -> None:
        """Read prompts, normalise them, assign stable ids, drop duplicates, map hazard categories.

        Bad rows are named by file and line and written to prompts.rejects.jsonl with the reason; good rows
        still land. Ingesting several sources into one run merges them.
        """
        from cotforge.ingest.run import ingest_into_run
        from cotforge.runfolder import RunFiles

        outcome = ingest_into_run(run, config)
        rejects = outcome.result.rejects

        # Messages quote user text (file names, labels): printed as plain text, never as console markup.
        def say(message: str) -> None:
            err_console.print(message, markup=False, highlight=False)

        for reject in rejects[:20]:
            say(f"rejected {reject.message} ({', '.join(reject.reasons)})")
        if len(rejects) > 20:
            say(f"… and {len(rejects) - 20} more")
        for label, n in sorted(outcome.result.overruled.items()):
            say(f"note: {OVERRULED[label].format(n=n, config=config)}")
        console.print(counts_table(f"ingest → {run / RunFiles.PROMPTS}", outcome.counts))
        if rejects:
            say(f"rejected rows with reasons: {run / RunFiles.PROMPT_REJECTS}")
        if strict and rejects:
            raise typer.Exit(1)
