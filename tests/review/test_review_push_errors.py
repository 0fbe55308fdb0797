"""Push idempotence, distribution updates, incompatible datasets, and the errors users see (real server)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import argilla as rg
import pytest
from review_builders import UIAnnotator, dataset_id_of, write_review_run
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.review.connection import (
    ArgillaTarget,
    ReviewAuthError,
    ReviewConnectionError,
    ReviewSettingsError,
    find_workspace,
)
from cotforge.review.pull import ReviewPullConfig, review_status
from cotforge.review.push import ReviewPushConfig
from cotforge.review.server import ReviewServer
from cotforge.review.stage import auto_review_in_run, pull_from_argilla, push_to_argilla
from cotforge.runfolder import RunFiles, RunFolder
from cotforge.runfolder.manifest import load_manifest
from cotforge.schemas import Sample, Verdict
from cotforge.serving.vllm_server import free_port

pytestmark = pytest.mark.integration


def test_push_twice_adds_nothing_and_new_samples_append(
    argilla_env: ReviewServer,
    dataset_name: str,
    make_annotator: Callable[[str, str], UIAnnotator],
    run_dir: Path,
) -> None:
    write_review_run(run_dir, 100)
    config = ReviewPushConfig(
        workspace="pushes", dataset=dataset_name, annotators_per_record=2, progress=False
    )
    assert push_to_argilla(run_dir, config).pushed == 100
    again = push_to_argilla(run_dir, config)
    assert (again.pushed, again.already_present, again.records_in_dataset) == (0, 100, 100)
    write_review_run(run_dir, 10, start=100)
    more = push_to_argilla(run_dir, config.model_copy(update={"annotators_per_record": None}))
    assert (more.pushed, more.already_present, more.records_in_dataset) == (10, 100, 110)
    status = review_status(run_dir, ArgillaTarget(workspace="pushes", dataset=dataset_name))
    assert (status.total, status.annotators_per_record) == (
        110,
        2,
    )  # no --annotators: the dataset keeps its 2
    manifest = load_manifest(RunFolder(run_dir), "review")
    assert (
        manifest is not None and manifest.counts["pushed"] == 10 and manifest.counts["already_present"] == 100
    )

    # Fewer annotators per record: the dataset's distribution changes, and Argilla's status job (run in-process
    # by the local server) marks the records that now have enough submitted responses as completed.
    ann = make_annotator("ann", "pushes")
    queue = ann.pending(dataset_id_of(argilla_env.url, argilla_env.api_key, "pushes", dataset_name))
    for record_id in list(queue.values())[:3]:
        values = {"reasoning_quality": 4, "answer_verdict": "helpful", "consistency": "consistent"}
        ann.respond(record_id, "submitted", values)
    target = ArgillaTarget(workspace="pushes", dataset=dataset_name)
    assert review_status(run_dir, target).completed == 0
    push_to_argilla(run_dir, config.model_copy(update={"annotators_per_record": 1}))
    deadline = time.monotonic() + 20
    while review_status(run_dir, target).completed != 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    status = review_status(run_dir, target)
    assert (status.completed, status.annotators_per_record) == (3, 1)


def test_push_refuses_a_dataset_with_other_settings(
    argilla_env: ReviewServer, dataset_name: str, run_dir: Path
) -> None:
    write_review_run(run_dir, 3)
    client = rg.Argilla(api_url=argilla_env.url, api_key=argilla_env.api_key)
    find_workspace(client, "clash", create=True)
    settings = rg.Settings(
        fields=[rg.TextField(name="prompt", client=client), rg.TextField(name="text", client=client)],
        questions=[rg.LabelQuestion(name="answer_verdict", labels=["good", "bad"], client=client)],
    )
    rg.Dataset(name=dataset_name, workspace="clash", settings=settings, client=client).create()
    with pytest.raises(ReviewSettingsError) as err:
        push_to_argilla(run_dir, ReviewPushConfig(workspace="clash", dataset=dataset_name, progress=False))
    message = str(err.value)
    assert f"clash/{dataset_name}" in message and "field 'reasoning' is missing" in message
    assert (
        "question 'answer_verdict' has options ['bad', 'good']" in message and "another --dataset" in message
    )
    result = CliRunner().invoke(
        app, ["review", "push", "--run", str(run_dir), "--workspace", "clash", "--dataset", dataset_name]
    )
    assert result.exit_code == 1 and "settings cotforge cannot use" in result.output
    manifest = load_manifest(RunFolder(run_dir), "review")
    assert (
        manifest is not None
        and manifest.status == "failed"
        and "ReviewSettingsError" in (manifest.error or "")
    )


def test_wrong_missing_and_annotator_keys_are_named(
    argilla_env: ReviewServer,
    dataset_name: str,
    make_annotator: Callable[[str, str], UIAnnotator],
    run_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_review_run(run_dir, 2)
    config = ReviewPushConfig(workspace="keys", dataset=dataset_name, progress=False)
    push_to_argilla(run_dir, config)
    monkeypatch.setenv("ARGILLA_API_KEY", "not-the-right-key")
    with pytest.raises(ReviewAuthError, match="rejected the API key in ARGILLA_API_KEY"):
        push_to_argilla(run_dir, config)
    result = CliRunner().invoke(app, ["review", "pull", "--run", str(run_dir), "--dataset", dataset_name])
    assert result.exit_code == 1 and "rejected the API key" in result.output
    monkeypatch.delenv("ARGILLA_API_KEY")
    with pytest.raises(ReviewAuthError, match="ARGILLA_API_KEY is not set"):
        pull_from_argilla(run_dir, ReviewPullConfig(workspace="keys", dataset=dataset_name))
    monkeypatch.setenv("ARGILLA_API_KEY", make_annotator("ann", "keys").api_key)
    with pytest.raises(ReviewAuthError, match="role 'annotator'"):
        pull_from_argilla(run_dir, ReviewPullConfig(workspace="keys", dataset=dataset_name))


def test_server_down_is_a_clear_error(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_review_run(run_dir, 2)
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ARGILLA_API_KEY", "some-key-123")
    with pytest.raises(ReviewConnectionError, match=f"cannot reach Argilla at {down}.*cotforge review serve"):
        push_to_argilla(run_dir, ReviewPushConfig(api_url=down, retries=0, progress=False))
    result = CliRunner().invoke(app, ["review", "status", "--run", str(run_dir), "--api-url", down])
    assert result.exit_code == 1 and f"cannot reach Argilla at {down}" in result.output


def test_pull_of_a_missing_dataset_says_to_push_first(argilla_env: ReviewServer, run_dir: Path) -> None:
    write_review_run(run_dir, 1)
    with pytest.raises(ReviewSettingsError, match="run `cotforge review push` first"):
        pull_from_argilla(run_dir, ReviewPullConfig(workspace="nowhere", dataset="never-pushed"))


def test_cli_push_pull_status_and_auto_review(
    argilla_env: ReviewServer, dataset_name: str, run_dir: Path
) -> None:
    write_review_run(run_dir, 4)
    common = ["--run", str(run_dir), "--workspace", "cli", "--dataset", dataset_name]
    runner = CliRunner()
    pushed = runner.invoke(app, ["review", "push", *common, "--no-progress"])
    assert pushed.exit_code == 0, pushed.output
    assert "pushed" in pushed.output and "4" in pushed.output
    status = runner.invoke(app, ["review", "status", *common])
    assert status.exit_code == 0 and "pending" in status.output
    pulled = runner.invoke(app, ["review", "pull", *common, "--no-progress", "--strategy", "unanimous"])
    assert pulled.exit_code == 0, pulled.output
    assert "inter-annotator agreement" in pulled.output and "answer_verdict" in pulled.output
    bad = runner.invoke(app, ["review", "pull", *common, "--on-tie", "coin-flip"])
    assert bad.exit_code == 1 and "on_tie" in bad.output

    # No server configured: the pipeline accepts the validated samples as they are.
    counts = auto_review_in_run(run_dir)
    folder = RunFolder(run_dir)
    assert counts["accepted"] == 4
    assert folder.read(RunFiles.REVIEWED, Sample) == folder.read(RunFiles.ACCEPTED, Sample)
    assert {v.outcome for v in folder.read(RunFiles.REVIEW_VERDICTS, Verdict)} == {"accepted"}


def test_push_after_one_killed_mid_create_rebuilds_the_draft_dataset(
    argilla_env: ReviewServer, run_dir: Path
) -> None:
    """A push killed between creating the dataset and publishing it leaves a draft with part of its settings
    (found by `make chaos`): the next push rebuilds it and logs every record once, instead of refusing it."""
    from cotforge.review.settings import build_settings

    write_review_run(run_dir, 12)
    client = rg.Argilla(api_url=argilla_env.url, api_key=argilla_env.api_key)
    find_workspace(client, "killed", create=True)
    draft = rg.Dataset(
        name="half-made", workspace="killed", settings=build_settings(client, 1), client=client
    )
    super(rg.Dataset, draft).create()  # what Dataset.create() does before a kill: no fields, not published
    assert draft._model.status == "draft"

    result = push_to_argilla(
        run_dir, ReviewPushConfig(workspace="killed", dataset="half-made", progress=False)
    )
    assert (result.created_dataset, result.pushed, result.records_in_dataset) == (True, 12, 12)
    dataset = client.datasets(name="half-made", workspace="killed")
    assert dataset is not None and dataset._model.status == "ready"
    ids = [str(r.id) for r in dataset.records]
    assert len(ids) == len(set(ids)) == 12
