"""`release push`: one Hub commit with the planned operations. The Hub is the only thing faked here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2  # the HTTP client huggingface_hub 2.x raises its errors with
import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError
from run_factory import BuiltRun
from typer.testing import CliRunner

from cotforge.cli import app
from cotforge.release.manifest import ReleaseResult
from cotforge.release.push import PushConfig, plan_push, push_release
from cotforge.release.push import ReleaseError as PushError

TOKEN = "hf_FAKEtokenFAKEtokenFAKEtoken0123"


@dataclass
class FakeHub:
    """Records every call like ``HfApi`` would receive it; answers with the repo state it was given."""

    private_repo: bool = True
    branches: list[str] = field(default_factory=lambda: ["main"])
    tags: list[str] = field(default_factory=list)
    fail_commit_with: Exception | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))

    def create_repo(self, repo_id: str, **kwargs: Any) -> Any:
        self._record("create_repo", repo_id=repo_id, **kwargs)

    def repo_info(self, repo_id: str, **kwargs: Any) -> Any:
        self._record("repo_info", repo_id=repo_id, **kwargs)
        return SimpleNamespace(private=self.private_repo)

    def list_repo_refs(self, repo_id: str, **kwargs: Any) -> Any:
        self._record("list_repo_refs", repo_id=repo_id, **kwargs)
        return SimpleNamespace(
            branches=[SimpleNamespace(name=b) for b in self.branches],
            tags=[SimpleNamespace(name=t) for t in self.tags],
        )

    def create_branch(self, repo_id: str, **kwargs: Any) -> Any:
        self._record("create_branch", repo_id=repo_id, **kwargs)

    def create_commit(self, repo_id: str, operations: Any, **kwargs: Any) -> Any:
        # Read the files now, as the real client uploads them, so the test sees what would be sent.
        sent = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations}
        self._record("create_commit", repo_id=repo_id, operations=list(operations), sent=sent, **kwargs)
        if self.fail_commit_with is not None:
            raise self.fail_commit_with
        return SimpleNamespace(
            oid="c0ffee" * 6 + "abcd", commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/1"
        )

    def create_tag(self, repo_id: str, **kwargs: Any) -> Any:
        self._record("create_tag", repo_id=repo_id, **kwargs)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def release_files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


@pytest.mark.unit
def test_push_sends_one_commit_of_the_planned_files_then_tags_it(
    released: tuple[BuiltRun, ReleaseResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, result = released
    out = Path(result.out_dir)
    files_before = release_files(out)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub = FakeHub()
    config = PushConfig(repo_id="me/cot-safety", revision="v1-data", tag="v1.0", private=True)
    pushed = push_release(out, config, client=hub)

    assert hub.names() == [
        "create_repo",
        "repo_info",
        "list_repo_refs",
        "create_branch",
        "create_commit",
        "create_tag",
    ]
    calls = dict(hub.calls)
    assert calls["create_repo"] == {
        "repo_id": "me/cot-safety", "private": True, "exist_ok": True, "repo_type": "dataset", "token": TOKEN,
    }  # fmt: skip
    assert calls["create_branch"]["branch"] == "v1-data"
    commit = calls["create_commit"]
    assert commit["revision"] == "v1-data" and commit["repo_type"] == "dataset" and commit["token"] == TOKEN
    assert all(isinstance(op, CommitOperationAdd) for op in commit["operations"])
    # Exactly the release's files, byte for byte, each matching its SHA-256 in release.json.
    assert sorted(commit["sent"]) == files_before
    manifest = json.loads((out / "release.json").read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(commit["sent"][name]).hexdigest() == digest
    assert calls["create_tag"] == {
        "repo_id": "me/cot-safety", "tag": "v1.0", "revision": pushed.commit_oid, "tag_message": commit["commit_message"],
        "repo_type": "dataset", "token": TOKEN,
    }  # fmt: skip
    assert pushed.created_branch and pushed.files == len(files_before) and pushed.private

    # The push is recorded beside the release (never uploaded), and the token is written nowhere.
    record = json.loads((out / "manifests" / "release-push.json").read_text())
    assert record["status"] == "completed" and record["extra"]["commit_oid"] == pushed.commit_oid
    for path in [*out.rglob("*"), *run.root.rglob("*")]:
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    # A second push plans the same files: the push record is not part of the release.
    assert [f.path_in_repo for f in plan_push(out, config).files] == files_before


@pytest.mark.unit
def test_dry_run_prints_the_exact_operations_and_sends_nothing(
    released: tuple[BuiltRun, ReleaseResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, result = released
    monkeypatch.delenv("HF_TOKEN", raising=False)  # a dry run needs no token
    args = [
        "release",
        "push",
        result.out_dir,
        "--repo-id",
        "me/cot-safety",
        "--revision",
        "dev",
        "--tag",
        "v2",
    ]
    outcome = CliRunner().invoke(app, [*args, "--private", "--dry-run"], terminal_width=200)
    assert outcome.exit_code == 0, outcome.output
    plan = plan_push(
        result.out_dir, PushConfig(repo_id="me/cot-safety", revision="dev", tag="v2", private=True)
    )
    for f in plan.files:
        assert f"add {f.path_in_repo}  {f.size} bytes  sha256:{f.sha256}" in outcome.output
    assert "revision: dev; tag: v2" in outcome.output and "private" in outcome.output
    assert "nothing was sent" in outcome.output and not (Path(result.out_dir) / "manifests").exists()


@pytest.mark.unit
def test_a_push_refuses_before_committing_when_something_is_wrong(
    released: tuple[BuiltRun, ReleaseResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, result = released
    out = Path(result.out_dir)
    config = PushConfig(repo_id="me/cot-safety", tag="v1", private=True)

    monkeypatch.delenv("HF_TOKEN", raising=False)
    hub = FakeHub()
    with pytest.raises(PushError, match="HF_TOKEN is not set"):
        push_release(out, config, client=hub)
    assert hub.calls == []

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub = FakeHub(private_repo=False)
    with pytest.raises(PushError, match="already exists and is public"):
        push_release(out, config, client=hub)
    assert "create_commit" not in hub.names()

    hub = FakeHub(tags=["v1"])
    with pytest.raises(PushError, match="tag 'v1' already exists"):
        push_release(out, config, client=hub)
    assert "create_commit" not in hub.names()

    # A Hub error that echoes the token: the message names what failed and hides the token.
    request = httpx2.Request("POST", "https://huggingface.co/api/datasets/me/cot-safety/commit/main")
    error = HfHubHTTPError(
        f"401 Unauthorized for token {TOKEN}", response=httpx2.Response(401, request=request)
    )
    hub = FakeHub(fail_commit_with=error)
    with pytest.raises(PushError, match=r"pushing to me/cot-safety@main failed") as info:
        push_release(out, config, client=hub)
    assert TOKEN not in str(info.value)
    record = (out / "manifests" / "release-push.json").read_text()
    assert '"status": "failed"' in record and TOKEN not in record

    card = out / "README.md"
    card.write_text(card.read_text() + "\nedited by hand\n")
    with pytest.raises(PushError, match=r"README\.md \(changed\)"):
        push_release(out, config, client=FakeHub())
    (out / "extra.txt").write_text("x")
    with pytest.raises(PushError, match=r"extra\.txt \(not written by the build\)"):
        plan_push(out, config)
    with pytest.raises(ValueError, match="namespace/name"):
        PushConfig(repo_id="just-a-name")
    with pytest.raises(PushError, match=r"no release\.json; run `cotforge release build"):
        plan_push(out.parent, config)
    with pytest.raises(
        PushError, match=r"manifests/release\.json: not a release manifest \(cotforge_version: Field"
    ):
        plan_push(out.parent / "manifests", config)  # the run's stage manifest is not a release
