"""Price table, cost of usage (online and batch), the usage ledger and the per-stage / pipeline sums."""

from __future__ import annotations

from pathlib import Path

import pytest

from cotforge.errors import CotforgeError
from cotforge.llm import pricing
from cotforge.llm.config import LLMConfig, PriceTable
from cotforge.llm.pricing import UsageLedger, cost_of, pipeline_cost, price_for, read_ledger, stage_costs
from cotforge.schemas import TokenUsage

pytestmark = pytest.mark.unit

USAGE = TokenUsage(prompt_tokens=1_000_000, completion_tokens=500_000)


def test_bundled_table_prices_a_common_model_and_batch_is_half() -> None:
    price = price_for(LLMConfig(model="gpt-4o-mini", base_urls=["http://127.0.0.1:1/v1"]))
    assert price is not None
    assert cost_of(USAGE, price) == pytest.approx(0.15 + 0.30)
    assert cost_of(USAGE, price, batch=True) == pytest.approx((0.15 + 0.30) / 2)
    explicit = PriceTable(prompt_per_million=1, completion_per_million=2, batch_prompt_per_million=0.9)
    assert explicit.cost(USAGE, batch=True) == pytest.approx(0.9 + 0.5)


def test_user_tables_extend_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "env.yaml"
    env_file.write_text(
        "models:\n  my-teacher: {prompt: 1.0, completion: 3.0}\n  gpt-4o: {prompt: 9, completion: 9}\n"
    )
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("models:\n  gpt-4o: {prompt: 7, completion: 7}\n")
    monkeypatch.setenv(pricing.PRICES_ENV, str(env_file))
    table = pricing.price_table(str(cfg_file))
    assert table["my-teacher"].prompt_per_million == 1.0
    assert table["gpt-4o"].prompt_per_million == 7  # the config's file comes last
    assert table["gpt-4o-mini"].prompt_per_million == 0.15  # bundled entries stay


def test_bad_price_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  m: {prompt: -1, completion: 1}\n")
    with pytest.raises(CotforgeError, match=r"bad.yaml: model 'm': prompt"):
        pricing.price_table(str(bad))
    with pytest.raises(CotforgeError, match="no such file"):
        pricing.price_table(str(tmp_path / "missing.yaml"))
    (tmp_path / "flat.yaml").write_text("- 1\n")
    with pytest.raises(CotforgeError, match="`models:` mapping"):
        pricing.price_table(str(tmp_path / "flat.yaml"))


def test_a_model_without_price_costs_null_and_is_named_once(capsys: pytest.CaptureFixture[str]) -> None:
    config = LLMConfig(model="nobody-priced-this", base_urls=["http://api.example.invalid/v1"])
    assert cost_of(USAGE, price_for(config)) is None
    assert cost_of(USAGE, price_for(config)) is None
    err = capsys.readouterr().err
    assert err.count("no price for model 'nobody-priced-this'") == 1


def test_ledger_sums_per_stage_and_pipeline(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    priced = LLMConfig(model="gpt-4o-mini", base_urls=["http://127.0.0.1:1/v1"])
    batch = LLMConfig(model="gpt-4o-mini", base_urls=["http://127.0.0.1:1/v1"], mode="batch")
    free = LLMConfig(model="local", base_urls=["http://api.example.invalid/v1"])
    for stage, config in (("generate", priced), ("judge", batch), ("sample", free)):
        ledger = UsageLedger(path, stage, config)
        ledger.record(USAGE)
        ledger.record(USAGE)
        ledger.close()
    with path.open("a") as f:
        f.write('{"stage": "generate", "model": "gpt')  # torn by a kill
    rows = read_ledger(path)
    assert len(rows) == 6
    stages = stage_costs(rows, cached={"generate": 3})
    assert stages["generate"]["cost_usd"] == pytest.approx(2 * 0.45)
    assert stages["generate"]["cached_requests"] == 3 and stages["generate"]["requests"] == 2
    assert stages["judge"]["cost_usd"] == pytest.approx(0.45)  # batch price
    assert stages["sample"]["cost_usd"] is None  # unpriced: null, not 0
    total = pipeline_cost(stages, kept_samples=4, kept_pairs=0)
    assert total["total_usd"] is None and total["unpriced_models"] == ["local"]
    del stages["sample"]
    total = pipeline_cost(stages, kept_samples=4, kept_pairs=0)
    assert total["total_usd"] == pytest.approx(1.35)
    assert total["per_kept_sample_usd"] == pytest.approx(1.35 / 4)
    assert total["per_kept_pair_usd"] is None


def test_a_model_this_machine_serves_costs_zero_without_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    from cotforge.pipeline.stages import resolve_servers

    # What a pipeline's `server:` entry (the embedded model included) resolves to, and the offline engine.
    served = resolve_servers(
        "judge", {"server": "smollm2"}, lambda _n: ("http://127.0.0.1:41234/v1", "smollm2")
    )
    for config in (
        LLMConfig.model_validate(served["judge"]),
        LLMConfig(model="smollm2", base_urls=["http://localhost:8000/v1", "http://[::1]:8001/v1"]),
        LLMConfig(model="/models/sft", backend="vllm"),
    ):
        assert cost_of(USAGE, price_for(config)) == 0.0
    # A priced name stays priced on a local URL (a tunnel to a paid API), and one remote replica is not local.
    assert price_for(LLMConfig(model="gpt-4o-mini", base_urls=["http://127.0.0.1:1/v1"])) != price_for(
        LLMConfig(model="smollm2", base_urls=["http://127.0.0.1:1/v1"])
    )
    mixed = LLMConfig(
        model="mixed-fleet", base_urls=["http://127.0.0.1:1/v1", "http://gpu.example.invalid/v1"]
    )
    assert price_for(mixed) is None
    err = capsys.readouterr().err
    assert err.count("no price for model") == 1 and "'mixed-fleet'" in err  # the local ones said nothing
