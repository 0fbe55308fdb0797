"""The ledger and `trace` on a realistic finished run folder (real record files, real release build)."""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from run_factory import build_run

from cotforge.curation.ledger import LEDGER_FILE, ROW_GROUP_SIZE, funnel, ledger_is_stale, write_ledger
from cotforge.curation.trace import TraceError, trace_rows
from cotforge.release.build import build_release

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    built = build_run(tmp_path_factory.mktemp("ledger") / "run", with_metrics=False)
    build_release(built.root)
    return built


def test_accepted_prompt_traced_end_to_end(run) -> None:
    path, _ = write_ledger(run.root)
    prompt = run.prompts[0]  # safety prompt: sample, review, variant, candidates, judge, pairs, release
    rows = trace_rows(path, prompt.id)
    stages = [r["stage"] for r in rows]
    assert stages[0] == "ingest"
    for stage in ("generate", "validate", "review", "augment", "sample", "judge", "pairs", "release"):
        assert stage in stages, stage
    assert all(r["in_release"] for r in rows)
    variant = run.augmented[0]
    assert {r["variant_id"] for r in rows if r["stage"] == "sample"} == {prompt.id, variant.id}
    judged = [r for r in rows if r["stage"] == "judge"]
    assert {r["h_f"] for r in judged} >= {0.02, 0.97}
    review = next(r for r in rows if r["stage"] == "review")
    assert review["reviewers"] == "alice,bob"
    # A variant, sample or pair id leads to the same prompt.
    assert trace_rows(path, variant.id) == rows
    assert trace_rows(path, run.pairs[0].id) == rows


def test_rejected_prompts_say_where_and_why(run) -> None:
    path, table = write_ledger(run.root)
    rows = table.to_pylist()
    from cotforge.curation.ledger import prompt_fates

    fates = prompt_fates(rows)
    assert fates[run.prompts[-1].id] == ("generate", "no_think_close")
    refused = run.samples[7].prompt_id
    assert fates[refused] == ("validate", "utility_refusal")
    assert fates[run.prompts[5].id][0] in ("pairs", "release")
    assert fates["bundled/prompts.jsonl:7"] == ("ingest", "empty_text")
    generate_reject = [r for r in trace_rows(path, run.prompts[-1].id) if r["verdict"] == "rejected"]
    assert generate_reject and generate_reject[0]["reasons"] == ["no_think_close"]
    counted = {(f.stage, f.reason): f.prompts for f in funnel(rows)}
    assert sum(counted.values()) == len(run.prompts) + 1  # every prompt and the ingest reject, once
    assert counted[("release", "released")] >= 5


def test_unknown_id_names_close_ids(run) -> None:
    path, _ = write_ledger(run.root)
    wanted = run.prompts[2].id
    with pytest.raises(TraceError, match=wanted):
        trace_rows(path, wanted[:-1] + ("0" if wanted[-1] != "0" else "1"))


def test_ledger_is_sorted_in_row_groups_and_goes_stale(run) -> None:
    path, table = write_ledger(run.root)
    ids = table.column("prompt_id").to_pylist()
    assert ids == sorted(ids)
    assert pq.ParquetFile(path).metadata.row_group(0).num_rows <= ROW_GROUP_SIZE
    assert not ledger_is_stale(run.root)
    samples = run.root / "samples.jsonl"
    import os

    # Freshness is by content: a newer file time alone changes nothing, a changed line does.
    os.utime(samples, (path.stat().st_mtime + 5, path.stat().st_mtime + 5))
    assert not ledger_is_stale(run.root)
    samples.write_text(samples.read_text().replace("Here is a clear answer", "Here is a plain answer", 1))
    assert ledger_is_stale(run.root)


def test_trace_cli(run) -> None:
    env_cmd = [sys.executable, "-m", "cotforge", "trace", str(run.root)]
    whole = subprocess.run(env_cmd, capture_output=True, text=True, check=True)
    assert "utility_refusal" in whole.stdout and "released" in whole.stdout
    assert (run.root / LEDGER_FILE).is_file()
    one = subprocess.run([*env_cmd, run.prompts[-1].id], capture_output=True, text=True, check=True)
    assert "no_think_close" in one.stdout
    typo = run.prompts[3].id[:-2] + "zz"
    bad = subprocess.run([*env_cmd, typo], capture_output=True, text=True)
    assert bad.returncode == 1 and f"close ids: {run.prompts[3].id}" in bad.stderr
