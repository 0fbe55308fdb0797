"""CLI: `ingest` — prompt files into the run folder's prompts.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cotforge.cli.common import RunOption, console, counts_table, err_console, fail, friendly_errors
from cotforge.cli.config_options import ConfigFile, Sets, StageConfig

INGEST = StageConfig(
    "cotforge.ingest:IngestConfig",
    {
        "kind": "kind",
        "text_column": "text_column",
        "category_column": "category_column",
        "kind_column": "kind_column",
        "source": "source",
        "licence": "licence",
        "max_chars": "max_chars",
        "category_map": "category_map",
    },
    "ingest",
)


def _load_mapping(path: Path) -> dict[str, str]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        fail(f"{path}: expected a mapping of source label → category")
    return {str(k): str(v) for k, v in data.items()}


def register(app: typer.Typer) -> None:
    @app.command(cls=INGEST.command())
    @friendly_errors
    def ingest(
        sources: Annotated[
            list[str] | None,
            typer.Argument(help="JSONL, CSV or Parquet files, `datasets` folders, or Hub ids (when online)."),
        ] = None,
        run: RunOption = Path("runs/default"),
        config_file: ConfigFile = None,
        sets: Sets = None,
        bundled: bool = typer.Option(
            False, "--bundled", help="Ingest the sample prompts shipped with cotforge."
        ),
        kind: str | None = typer.Option(None, "--kind"),
        text_column: str | None = typer.Option(None, "--text-column"),
        category_column: str | None = typer.Option(None, "--category-column"),
        kind_column: str | None = typer.Option(None, "--kind-column"),
        source: str | None = typer.Option(None, "--source"),
        licence: str | None = typer.Option(None, "--licence"),
        max_chars: int | None = typer.Option(None, "--max-chars"),
        category_map: Path | None = typer.Option(
            None, "--category-map", help="YAML: source label → category."
        ),
        split: str | None = typer.Option(
            None, "--split", help="Split for `datasets` sources (default: train)."
        ),
        limit: int | None = typer.Option(None, "--limit", help="Keep only the first N rows of each source."),
        strict: bool = typer.Option(False, "--strict", help="Exit 1 when any row is rejected."),
    ) -> None:
        """Read prompts, normalise them, assign stable ids, drop duplicates, map hazard categories.

        Bad rows are named by file and line and written to prompts.rejects.jsonl with the reason; good rows
        still land. Ingesting several sources into one run merges them.
        """
        from cotforge.ingest import ingest_into_run
        from cotforge.runfolder import RunFiles
        from cotforge.sources import bundled_prompt_files

        specs = list(sources or [])
        if bundled:
            specs += [str(p) for p in bundled_prompt_files()]
        if not specs:
            fail("nothing to ingest: pass files or --bundled")
        config = INGEST.build(
            config_file, sets, kind=kind, text_column=text_column, category_column=category_column,
            kind_column=kind_column, source=source, licence=licence, max_chars=max_chars,
            category_map=_load_mapping(category_map) if category_map else None,
        )  # fmt: skip
        where = {"split": split} if split is not None else {}
        result, manifest = ingest_into_run(run, specs, config, limit=limit, **where)
        for reject in result.rejects[:20]:
            err_console.print(f"[yellow]rejected[/] {reject.message} [dim]({', '.join(reject.reasons)})[/]")
        if len(result.rejects) > 20:
            err_console.print(f"… and {len(result.rejects) - 20} more")
        console.print(counts_table(f"ingest → {run / RunFiles.PROMPTS}", manifest.counts))
        if result.rejects:
            err_console.print(f"rejected rows with reasons: {run / RunFiles.PROMPT_REJECTS}")
        if strict and result.rejects:
            raise typer.Exit(1)
