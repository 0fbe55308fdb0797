"""`release push`: one Hub commit of a release folder, at a branch, optionally tagged and private.

The plan (:func:`plan_push`) is computed locally: it checks that the folder is exactly what ``release build``
wrote (every file's SHA-256 against ``release.json``) and lists each file with its path in the repo, size and
SHA-256. ``--dry-run`` prints that plan and stops. The network edge (:func:`push_release`) is a few calls on
``huggingface_hub.HfApi``: create the repo (``private`` applies only to a new repo, so an existing public
repo is refused when ``--private`` is asked), create the branch if needed, one ``create_commit``, then the
tag on that commit. The token comes from ``HF_TOKEN`` only, never from a stored login, and is never printed.
A record of the push goes to ``<release>/manifests/release-push.json``, which is never uploaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cotforge.release.manifest import RELEASE_MANIFEST, ReleaseError, ReleaseManifest
from cotforge.runfolder import RunFiles, file_sha256
from cotforge.runfolder.manifest import scrub_secrets
from cotforge.safe_text import visible

REPO_TYPE = "dataset"
PUSH_STAGE = "release-push"
LOCAL_ONLY = RunFiles.MANIFESTS  # push records live beside the release, never in the repo


class PushConfig(BaseModel):
    """Where a release goes on the Hub."""

    model_config = ConfigDict(extra="forbid")

    repo_id: str = Field(description="namespace/name of the dataset repo.")
    revision: str = Field(
        default="main", min_length=1, description="Branch to commit to (created if missing)."
    )
    tag: str | None = Field(default=None, description="Tag to put on the new commit (must not exist yet).")
    private: bool = Field(
        default=False, description="Create the repo private; refuse an existing public repo."
    )
    commit_message: str | None = None

    @field_validator("repo_id")
    @classmethod
    def _valid_repo_id(cls, value: str) -> str:
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        try:
            validate_repo_id(value)
        except HFValidationError as exc:
            raise ValueError(f"--repo-id {value!r}: {exc}") from None
        if "/" not in value:
            raise ValueError(f"--repo-id {value!r}: give namespace/name (e.g. your-name/cot-safety)")
        return value

    @field_validator("revision", "tag")
    @classmethod
    def _no_spaces(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(ch.isspace() for ch in value)):
            raise ValueError(f"{value!r}: a branch or tag name may not be empty or contain spaces")
        return value


class PlannedFile(BaseModel):
    """One file of the commit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path_in_repo: str
    size: int
    sha256: str


class PushPlan(BaseModel):
    """Exactly what a push sends: the target and every file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo_id: str
    repo_type: str = REPO_TYPE
    revision: str
    tag: str | None
    private: bool
    commit_message: str
    files: list[PlannedFile]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


class PushResult(BaseModel):
    """What a push did on the Hub."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo_id: str
    revision: str
    commit_oid: str
    commit_url: str
    tag: str | None
    private: bool
    created_branch: bool
    files: int


class HubClient(Protocol):
    """The part of ``huggingface_hub.HfApi`` a push uses (a fake stands in for it in tests)."""

    def create_repo(self, repo_id: str, **kwargs: Any) -> Any: ...
    def repo_info(self, repo_id: str, **kwargs: Any) -> Any: ...
    def list_repo_refs(self, repo_id: str, **kwargs: Any) -> Any: ...
    def create_branch(self, repo_id: str, **kwargs: Any) -> Any: ...
    def create_commit(self, repo_id: str, operations: Any, **kwargs: Any) -> Any: ...
    def create_tag(self, repo_id: str, **kwargs: Any) -> Any: ...


def read_release_manifest(release_dir: Path) -> ReleaseManifest:
    """The folder's ``release.json``, or an error saying to build the release first."""
    path = release_dir / RELEASE_MANIFEST
    if not path.is_file():
        raise ReleaseError(
            f"{release_dir}: no {RELEASE_MANIFEST}; run `cotforge release build --out {release_dir}` first"
        )
    try:
        return ReleaseManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ReleaseError(
            f"{path}: not a release manifest ({where}: {first['msg']}); push a folder written by "
            "`cotforge release build`, or rebuild it"
        ) from None


def _release_files(release_dir: Path) -> list[str]:
    return sorted(
        p.relative_to(release_dir).as_posix()
        for p in release_dir.rglob("*")
        if p.is_file() and p.relative_to(release_dir).parts[0] != LOCAL_ONLY
    )


def plan_push(release_dir: str | Path, config: PushConfig) -> PushPlan:
    """The commit a push would make, after checking the folder against its ``release.json``. No network."""
    root = Path(release_dir)
    manifest = read_release_manifest(root)
    on_disk = _release_files(root)
    expected = set(manifest.files) | {RELEASE_MANIFEST}
    changed = sorted(
        n
        for n in on_disk
        if n != RELEASE_MANIFEST and n in manifest.files and file_sha256(root / n) != manifest.files[n]
    )
    problems = [
        *(f"{n} (not written by the build)" for n in sorted(set(on_disk) - expected)),
        *(f"{n} (missing)" for n in sorted(expected - set(on_disk))),
        *(f"{n} (changed)" for n in changed),
    ]
    if problems:
        raise ReleaseError(
            f"{root}: the folder differs from its {RELEASE_MANIFEST}: {', '.join(problems)}; "
            "re-run `cotforge release build` rather than editing a release by hand"
        )
    rows = ", ".join(f"{name} {c.rows}" for name, c in manifest.configs.items() if c.included)
    # One line: a run folder's name may hold a line break, which would start the commit's description.
    message = (
        config.commit_message or f"cotforge release of run {visible(manifest.provenance.run_name)} ({rows})"
    )
    return PushPlan(
        repo_id=config.repo_id,
        revision=config.revision,
        tag=config.tag,
        private=config.private,
        commit_message=message,
        files=[
            PlannedFile(path_in_repo=n, size=(root / n).stat().st_size, sha256=file_sha256(root / n))
            for n in on_disk
        ],
    )


def commit_operations(release_dir: str | Path, plan: PushPlan) -> list[Any]:
    """The ``CommitOperationAdd`` list of the plan, in its order (local files, read lazily at upload)."""
    from huggingface_hub import CommitOperationAdd

    root = Path(release_dir)
    return [
        CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(root / f.path_in_repo))
        for f in plan.files
    ]


def describe_plan(plan: PushPlan) -> list[str]:
    """The plan as printable lines: target, then one line per file (path, bytes, sha256)."""
    lines = [
        f"repo: {plan.repo_id} (type {plan.repo_type}, {'private' if plan.private else 'public'} if created)",
        f"revision: {plan.revision}" + (f"; tag: {plan.tag}" if plan.tag else ""),
        f"commit: {plan.commit_message}",
        f"operations ({len(plan.files)} files, {plan.total_bytes} bytes):",
    ]
    lines += [f"  add {f.path_in_repo}  {f.size} bytes  sha256:{f.sha256}" for f in plan.files]
    return lines


def hub_token() -> str:
    """``HF_TOKEN`` from the environment, or an error saying how to set it."""
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise ReleaseError(
            "HF_TOKEN is not set: export a Hugging Face token with write access (HF_TOKEN=hf_…); "
            "cotforge reads it from the environment only"
        )
    return token


def hub_client() -> HubClient:
    """The real Hub client (the one network edge of a push); the token is passed per call."""
    from huggingface_hub import HfApi

    return HfApi()  # type: ignore[return-value]


@contextmanager
def _hub_errors(what: str, token: str | None) -> Iterator[None]:
    try:
        yield
    except OSError as exc:  # HfHubHTTPError, OfflineModeIsEnabled and connection errors are all OSErrors
        text = str(scrub_secrets(str(exc)))
        if token:
            text = text.replace(token, "<redacted>")
        raise ReleaseError(
            f"{what} failed: {text.strip()}; check the repo id, that HF_TOKEN may write to it, "
            "and that HF_HUB_OFFLINE is not set"
        ) from None


def execute_push(api: HubClient, release_dir: str | Path, plan: PushPlan, token: str) -> PushResult:
    """Send the plan: repo, branch, one commit, tag. Refuses before committing when the target is wrong.

    The token goes to each call explicitly, so a login stored on the machine is never used instead.
    """
    kind: dict[str, Any] = {"repo_type": REPO_TYPE, "token": token}
    with _hub_errors(f"creating or finding {plan.repo_id}", token):
        api.create_repo(plan.repo_id, private=plan.private, exist_ok=True, **kind)
        info = api.repo_info(plan.repo_id, **kind)
    if plan.private and not getattr(info, "private", False):
        raise ReleaseError(
            f"{plan.repo_id} already exists and is public; --private was asked, so nothing was pushed "
            "(make the repo private on the Hub, or push without --private)"
        )
    with _hub_errors(f"reading the branches and tags of {plan.repo_id}", token):
        refs = api.list_repo_refs(plan.repo_id, **kind)
    if plan.tag and plan.tag in {t.name for t in refs.tags}:
        raise ReleaseError(f"{plan.repo_id}: tag {plan.tag!r} already exists; choose another --tag")
    created_branch = plan.revision not in {b.name for b in refs.branches}
    with _hub_errors(f"pushing to {plan.repo_id}@{plan.revision}", token):
        if created_branch:
            api.create_branch(plan.repo_id, branch=plan.revision, exist_ok=True, **kind)
        commit = api.create_commit(
            plan.repo_id,
            commit_operations(release_dir, plan),
            commit_message=plan.commit_message,
            revision=plan.revision,
            **kind,
        )
        if plan.tag:
            api.create_tag(
                plan.repo_id, tag=plan.tag, revision=commit.oid, tag_message=plan.commit_message, **kind
            )
    return PushResult(
        repo_id=plan.repo_id,
        revision=plan.revision,
        commit_oid=commit.oid,
        commit_url=commit.commit_url,
        tag=plan.tag,
        private=bool(getattr(info, "private", plan.private)),
        created_branch=created_branch,
        files=len(plan.files),
    )


def push_release(release_dir: str | Path, config: PushConfig, client: HubClient | None = None) -> PushResult:
    """Push the release folder in one commit; records the push in ``<release>/manifests/release-push.json``.

    ``client`` is the Hub client (default: ``huggingface_hub.HfApi``); the token is read from ``HF_TOKEN``
    and handed to each call, never stored.
    """
    from cotforge.runfolder import RunFolder
    from cotforge.runfolder.manifest import StageRun

    plan = plan_push(release_dir, config)
    token = hub_token()
    api = client if client is not None else hub_client()
    with StageRun(RunFolder(release_dir), PUSH_STAGE, config, inputs=[RELEASE_MANIFEST]) as run:
        result = execute_push(api, release_dir, plan, token)
        run.counts.update(files=result.files, bytes=plan.total_bytes)
        run.extra.update(result.model_dump())
    return result
