"""CLI: `review serve|push|pull|status` — human review of the run's samples in Argilla."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from cotforge.cli.common import (
    RunOption,
    console,
    counts_table,
    err_console,
    fail,
    friendly_errors,
    plain,
)
from cotforge.cli.config_options import StageConfig
from cotforge.cli.stage_command import AcceptChanged, stage_command
from cotforge.runfolder.integrity import accepting_changes

if TYPE_CHECKING:
    from collections.abc import Callable

    from cotforge.review.agreement import QuestionAgreement
    from cotforge.review.connection import ArgillaTarget
    from cotforge.review.pull import PullResult, ReviewPullConfig
    from cotforge.review.push import ReviewPushConfig
    from cotforge.review.stage import ReviewConfig

TARGET_FLAGS = {"api_url": "api_url", "workspace": "workspace", "dataset": "dataset", "timeout": "timeout_s"}
AUTO = StageConfig("cotforge.review.stage:ReviewConfig", {"reviewer": "reviewer"}, "review auto")
TARGET = StageConfig("cotforge.review.connection:ArgillaTarget", TARGET_FLAGS, "review status")
PUSH = StageConfig(
    "cotforge.review.push:ReviewPushConfig",
    {
        **TARGET_FLAGS,
        "annotators": "annotators_per_record",
        "batch_size": "batch_size",
        "progress": "progress",
    },
    "review push",
)
PULL = StageConfig(
    "cotforge.review.pull:ReviewPullConfig",
    {
        **TARGET_FLAGS,
        "min_responses": "policy.min_responses",
        "strategy": "policy.strategy",
        "on_tie": "policy.on_tie",
        "discarded": "policy.discarded",
        "min_quality": "policy.min_reasoning_quality",
        "progress": "progress",
    },
    "review pull",
)
NO_KEY_HELP = (
    "ARGILLA_API_KEY is not set: the server's owner gets that key. Pick one and export it, e.g. "
    "`export ARGILLA_API_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(24))')`"
)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def agreement_table(result: PullResult) -> Table:
    """Agreement per question (columns): % agreement, Cohen/Fleiss kappa, Krippendorff alpha (rows)."""
    table = Table(title="inter-annotator agreement", title_justify="left")
    table.add_column("statistic", overflow="fold")
    reports = list(result.agreement.items())
    for name, _ in reports:
        table.add_column(name, justify="right", overflow="fold")
    rows: list[tuple[str, Callable[[QuestionAgreement], str]]] = [
        ("items (2+ raters)", lambda a: str(a.items)),
        ("raters", lambda a: str(a.raters)),
        ("% agreement", lambda a: _fmt(a.percent_agreement)),
        ("Cohen κ (mean)", lambda a: _fmt(a.cohen_kappa_mean)),
        ("Fleiss κ", lambda a: _fmt(a.fleiss_kappa)),
        ("Krippendorff α nominal", lambda a: _fmt(a.krippendorff_alpha.get("nominal"))),
        ("Krippendorff α ordinal", lambda a: _fmt(a.krippendorff_alpha.get("ordinal"))),
        ("Krippendorff α interval", lambda a: _fmt(a.krippendorff_alpha.get("interval"))),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(a) for _, a in reports))
    return table


def _serve(host: str, port: int, home: Path | None, owner: str) -> None:
    import signal
    import time

    from cotforge.review.server import ReviewServer
    from cotforge.serving.cache_dirs import user_cache_dir

    api_key = (os.environ.get("ARGILLA_API_KEY") or "").strip()
    if not api_key:
        fail(NO_KEY_HELP)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, kill and a closed terminal all stop Redis and Argilla (a background job may inherit SIGINT ignored).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    server = ReviewServer(
        home=home or user_cache_dir("argilla-home"),
        api_key=api_key,
        host=host,
        port=port,
        owner=owner,
        owner_password=os.environ.get("COTFORGE_REVIEW_OWNER_PASSWORD") or None,
        log=lambda message: err_console.print(plain(message, style="dim")),
    )
    err_console.print("starting Redis and argilla-server (in-memory search engine)…")
    with server:
        console.print(
            counts_table(
                "Argilla review server (local, single node)",
                {
                    "URL": server.url,
                    "owner": f"{owner} (UI password: $COTFORGE_REVIEW_OWNER_PASSWORD, else your ARGILLA_API_KEY)",
                    "data": server.home,
                    "logs": server.log_dir,
                    "PIDs": f"argilla {server.argilla.pid if server.argilla else '?'}, "
                    f"redis {server.redis.pid if server.redis else '?'}",
                },
            )
        )
        console.print(f"export ARGILLA_API_URL={server.url}   # then: cotforge review push --run RUN")
        console.print("Ctrl-C stops both processes.")
        try:
            while server.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            err_console.print("stopping the review server…")
            return
        fail(f"the review server stopped unexpectedly; see the logs in {server.log_dir}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Review the run's validated samples: `review --run R` runs the stage as a pipeline step does "
        "(Argilla when ARGILLA_API_URL is set, else auto); or serve a local Argilla, push samples, pull "
        "decisions, show progress, accept automatically.",
        invoke_without_command=True,
    )
    app.add_typer(group, name="review")

    @group.callback()
    @friendly_errors
    def review(
        ctx: typer.Context,
        run: RunOption = Path("runs/default"),
        mode: str | None = typer.Option(None, "--mode", help="detect (default), auto or argilla."),
        accept_changed: AcceptChanged = None,
    ) -> None:
        """Run the review stage: push new samples and pull decisions (Argilla), or accept them (auto)."""
        if ctx.invoked_subcommand is not None:
            return
        from cotforge.review.stage import ReviewConfig, run_review

        config = ReviewConfig.model_validate({} if mode is None else {"mode": mode})
        with accepting_changes(accept_changed or ()):
            counts = run_review(run, config)
        console.print(counts_table(f"review → {run}", counts))

    @group.command()
    @friendly_errors
    def serve(
        port: int = typer.Option(6900, "--port", help="Port for Argilla on loopback (0: any free port)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (keep loopback)."),
        home: Path | None = typer.Option(None, "--home", help="Database/logs folder (default: user cache)."),
        owner: str = typer.Option("owner", "--owner", help="Username of the owner account."),
    ) -> None:
        """Start a local Argilla 2.8 server (with Redis) until Ctrl-C; the owner's API key is $ARGILLA_API_KEY.

        The in-memory search engine makes it a single-node local review server; for production, point
        ARGILLA_API_URL/ARGILLA_API_KEY at your real Argilla instead.
        """
        _serve(host, port, home, owner)

    @stage_command(group, AUTO, name="auto")
    def auto(config: ReviewConfig, run: RunOption = Path("runs/default")) -> None:
        """Accept every validated sample as reviewed (no reviewers): reviewed.jsonl, review.verdicts.jsonl."""
        from cotforge.review.stage import auto_review_in_run

        console.print(counts_table(f"review auto → {run}", auto_review_in_run(run, config)))

    @stage_command(group, PUSH)
    def push(config: ReviewPushConfig, run: RunOption = Path("runs/default")) -> None:
        """Push the run's accepted samples to Argilla (record id = sample id: re-pushing adds nothing)."""
        from cotforge.review.stage import push_to_argilla

        result = push_to_argilla(run, config)
        console.print(
            counts_table(
                f"review push → {result.url} {result.workspace}/{result.dataset}",
                {
                    "pushed": result.pushed,
                    "already in the dataset": result.already_present,
                    "rejected (see review.rejects.jsonl)": result.rejected,
                    "records in the dataset": result.records_in_dataset,
                    "dataset created": result.created_dataset,
                },
            )
        )

    @stage_command(group, PULL)
    def pull(config: ReviewPullConfig, run: RunOption = Path("runs/default")) -> None:
        """Pull responses: decide each sample (majority, ties flagged), apply corrections, report agreement."""
        from cotforge.review.stage import pull_from_argilla

        result = pull_from_argilla(run, config)
        console.print(
            counts_table(f"review pull ← {result.url} {result.workspace}/{result.dataset}", result.counts)
        )
        console.print(agreement_table(result))

    @stage_command(group, TARGET, reads_run_files=False)
    def status(config: ArgillaTarget, run: RunOption = Path("runs/default")) -> None:
        """Show the review dataset's progress: records completed/pending and responses per annotator."""
        from cotforge.review.pull import review_status

        target = config
        report = review_status(run, target)
        console.print(
            counts_table(
                f"review status {report.url} {report.workspace}/{report.dataset}",
                {
                    "records": report.total,
                    "completed": report.completed,
                    "pending": report.pending,
                    "annotators per record": report.annotators_per_record,
                },
            )
        )
        table = Table(title="responses per annotator", title_justify="left")
        for column in ("annotator", "submitted", "discarded", "draft"):
            table.add_column(column, justify="left" if column == "annotator" else "right")
        for a in report.annotators:
            table.add_row(a.username, str(a.submitted), str(a.discarded), str(a.draft))
        console.print(table)
