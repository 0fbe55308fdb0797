"""CLI: `run` — a YAML pipeline end to end into one run folder."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer

from cotforge.cli.common import console, friendly_errors, styled


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def run(
        pipeline: Path = typer.Argument(..., help="Pipeline YAML (see pipelines/)."),
        run_dir: Path | None = typer.Option(
            None, "--run", "-r", help="Run folder (default: the pipeline's `run`)."
        ),
        start: str | None = typer.Option(
            None, "--from", help="First step to run (earlier ones are not touched)."
        ),
        until: str | None = typer.Option(None, "--until", help="Last step to run."),
        overrides: list[str] = typer.Option(
            [], "--set", help="Override a value: step.key=value or key=value (repeatable)."
        ),
        force: bool = typer.Option(False, "--force", help="Re-run steps even when unchanged."),
        check: bool = typer.Option(False, "--check", help="Validate the pipeline and exit."),
        retry_failed: list[str] = typer.Option(
            [],
            "--retry-failed",
            metavar="STEP",
            help="Run STEP again (even if unchanged), asking only the records it rejected for a retryable "
            "reason (request failed, unparseable answer); later steps follow. Repeatable.",
        ),
        accept_changed: list[str] = typer.Option(
            [],
            "--accept-changed",
            metavar="FILE",
            help="Keep this run file as it is although it changed since the step that wrote it (a hand edit): "
            "recorded in that step's manifest; the step is not re-run over it, the steps that read it are. "
            "Repeatable.",
        ),
    ) -> None:
        """Run the pipeline's steps in order into one run folder.

        A step whose config, inputs and templates are unchanged since it completed is skipped; a step that
        was interrupted resumes. The state lives in <run>/manifests/pipeline.json.
        """
        from cotforge.pipeline.runner import PipelineRunner
        from cotforge.pipeline.servers import ServerPool
        from cotforge.pipeline.spec import load_pipeline
        from cotforge.pipeline.stages import registry
        from cotforge.templates import templates_root

        extra = [f"run={run_dir}"] if run_dir is not None else []
        spec = load_pipeline(pipeline, [*overrides, *extra])
        runner = PipelineRunner(
            spec=spec,
            registry=registry(),
            servers=ServerPool(Path(spec.run), log=console.print),
            templates_root=templates_root(),
            log=lambda message: console.print(message, markup=False, highlight=False),
        )
        if check:
            # a --from/--until/--retry-failed that names no step is an error here too
            runner.retry_steps(retry_failed, runner.selected(start, until))
            console.print(
                f"{pipeline}: valid ({len(spec.steps)} steps: {', '.join(s.name for s in spec.steps)})"
            )
            return
        # SIGTERM (a CI timeout, `kill`) must still stop the vLLM servers this run started.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        state = runner.run(
            start=start, until=until, force=force, retry_failed=retry_failed, accept_changed=accept_changed
        )
        _print_products(Path(spec.run))
        completed = sum(s.status == "completed" for s in state.steps.values())
        console.print(styled(("done", "bold green"), f": {spec.run} ({completed} steps completed)"))


PRODUCTS = (
    ("dataset (release)", "release/README.md"),
    ("SFT model", "models/sft"),
    ("AW-DPO model", "models/awdpo"),
    ("evaluation", "eval/results.json"),
    ("report", "report/index.html"),
)


def _print_products(run: Path) -> None:
    """Where the things a user came for are (only those this run has)."""
    for label, relative in PRODUCTS:
        path = run / relative
        if path.exists():
            shown = path.parent if relative.endswith("README.md") else path
            console.print(f"  {label:<18} {shown}")
