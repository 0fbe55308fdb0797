"""CLI: `ingest` — prompt files into the run folder's prompts.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cotforge.cli.common import RunOption, console, counts_table, err_console, fail, friendly_errors


def _load_mapping(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    from cotforge.bounded_yaml import read_yaml_file

    data = read_yaml_file(path, "category map")
    if not isinstance(data, dict):
        fail(f"{path}: expected a mapping of source label → category")
    return {str(k): str(v) for k, v in data.items()}


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def ingest(
        sources: Annotated[
            list[str] | None,
            typer.Argument(help="JSONL, CSV or Parquet files, `datasets` folders, or Hub ids (when online)."),
        ] = None,
        run: RunOption = Path("runs/default"),
        bundled: bool = typer.Option(
            False, "--bundled", help="Ingest the sample prompts shipped with cotforge."
        ),
        kind: str | None = typer.Option(
            None, "--kind", help="utility or safety for every row (else a kind column)."
        ),
        text_column: str | None = typer.Option(None, "--text-column", help="Column holding the prompt text."),
        category_column: str = typer.Option("category", "--category-column"),
        kind_column: str = typer.Option("kind", "--kind-column"),
        source: str | None = typer.Option(None, "--source", help="Source name recorded on each prompt."),
        licence: str = typer.Option("unknown", "--licence", help="Licence of the source (SPDX id)."),
        split: str = typer.Option("train", "--split", help="Split for `datasets` sources."),
        max_chars: int = typer.Option(8000, "--max-chars", help="Longer prompts are rejected."),
        category_map: Path | None = typer.Option(
            None, "--category-map", help="YAML: source label → category."
        ),
        limit: int | None = typer.Option(None, "--limit", help="Keep only the first N rows of each source."),
        strict: bool = typer.Option(False, "--strict", help="Exit 1 when any row is rejected."),
    ) -> None:
        """Read prompts, normalise them, assign stable ids, drop duplicates, map hazard categories.

        Bad rows are named by file and line and written to prompts.rejects.jsonl with the reason; good rows
        still land. Ingesting several sources into one run merges them.
        """
        from cotforge.ingest import IngestConfig, ingest_into_run
        from cotforge.runfolder import RunFiles
        from cotforge.sources import bundled_prompt_files

        specs = list(sources or [])
        if bundled:
            specs += [str(p) for p in bundled_prompt_files()]
        if not specs:
            fail("nothing to ingest: pass files or --bundled")
        if kind not in (None, "utility", "safety"):
            fail(f"--kind must be 'utility' or 'safety', not {kind!r}")
        config = IngestConfig(
            kind=kind,  # type: ignore[arg-type]
            text_column=text_column,
            category_column=category_column,
            kind_column=kind_column,
            source=source,
            licence=licence,
            max_chars=max_chars,
            category_map=_load_mapping(category_map),
        )
        result, manifest = ingest_into_run(run, specs, config, split, limit)
        for reject in result.rejects[:20]:
            err_console.print(f"[yellow]rejected[/] {reject.message} [dim]({', '.join(reject.reasons)})[/]")
        if len(result.rejects) > 20:
            err_console.print(f"… and {len(result.rejects) - 20} more")
        console.print(counts_table(f"ingest → {run / RunFiles.PROMPTS}", manifest.counts))
        if result.rejects:
            err_console.print(f"rejected rows with reasons: {run / RunFiles.PROMPT_REJECTS}")
        if strict and result.rejects:
            raise typer.Exit(1)
