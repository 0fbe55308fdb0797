"""CLI: `schemas export|check` — JSON Schema for the record models."""

from __future__ import annotations

from pathlib import Path

import typer

from cotforge.cli.common import console, fail


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="JSON Schema of the record models (the contract between stages).", no_args_is_help=True
    )
    app.add_typer(group, name="schemas")

    @group.command("export")
    def export(
        out: Path = typer.Option(Path("schemas"), "--out", help="Folder to write *.schema.json into."),
    ) -> None:
        """Write one JSON Schema file per record model; stale files of removed models are deleted."""
        from cotforge.runfolder import atomic_write_text
        from cotforge.schema_export import schema_files

        files = schema_files()
        out.mkdir(parents=True, exist_ok=True)
        changed = 0
        for name, text in files.items():
            path = out / name
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                atomic_write_text(path, text)
                changed += 1
        for stale in set(p.name for p in out.glob("*.schema.json")) - set(files):
            (out / stale).unlink()
            changed += 1
        console.print(f"{len(files)} schemas in {out} ({changed} changed)")

    @group.command("check")
    def check(
        out: Path = typer.Option(Path("schemas"), "--out", help="Folder holding *.schema.json."),
    ) -> None:
        """Exit non-zero when the folder differs from what `export` would write."""
        from cotforge.schema_export import schema_files

        files = schema_files()
        stale = [n for n, t in files.items() if not (out / n).exists() or (out / n).read_text() != t]
        extra = set(p.name for p in out.glob("*.schema.json")) - set(files)
        if stale or extra:
            fail(
                f"{out} is out of date ({', '.join(sorted([*stale, *extra]))}); run `cotforge schemas export`"
            )
        console.print(f"{out}: {len(files)} schemas up to date")
